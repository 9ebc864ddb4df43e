// Runs the CPU backend on a HostCase into contiguous outputs.
#pragma once

#include <cstdint>
#include <vector>

#include "flashmla/decode.h"
#include "support/test_case.h"

namespace flashmla::testing {

struct CpuOutput {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

inline CpuOutput run_cpu(const HostCase& c) {
  CpuOutput o;
  // Sentinels, so that a row the reference forgets to write cannot pass as zero.
  o.out.assign(c.out_elements(), 0x7fff);
  o.lse.assign(c.lse_elements(), -12345.0f);
  mla_decode(Backend::cpu, c.host_args(o.out.data(), o.lse.data()));
  return o;
}

}  // namespace flashmla::testing
