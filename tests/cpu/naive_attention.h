// An independent, deliberately plain formulation of SPEC section 1 for checking the reference:
// gather each request's keys token by token through the block table, then a two-pass softmax.
#pragma once

#include <vector>

#include "support/test_case.h"

namespace flashmla::testing {

struct NaiveResult {
  std::vector<double> out;   // [batch, seqlen_q, num_heads_q, 512]
  std::vector<double> lse;   // [batch, num_heads_q, seqlen_q]
};

NaiveResult naive_attention(const HostCase& c);

}  // namespace flashmla::testing
