// FLOP, bytes and roofline time of one decode call: the formulas of shared/ANCHORS.md.
//   FLOP  = b * h_q * s_q * 2 * mean_len * (576 + 512)            (QK^T over 576 + PV over 512)
//   bytes = b * (s_q*h_q*576*2 + mean_len*576*2 + s_q*h_q*512*2)   (read q, read cache, write out)
//   roofline = max(FLOP / measured GEMM peak, bytes / measured streaming-read bandwidth)
// The formulas count every key of a request for every query token (the causal mask's
// savings at s_q = 2 are ignored), exactly as ANCHORS.md does, so the numbers compare.
#include <algorithm>

#include "bench.h"

namespace bench {

double mean_length(const std::vector<int>& lengths) {
  if (lengths.empty()) return 0.0;
  double sum = 0;
  for (int v : lengths) sum += v;
  return sum / static_cast<double>(lengths.size());
}

double flop_per_call(const Config& c, double mean_len) {
  return static_cast<double>(c.b) * c.h_q * c.s_q * 2.0 * mean_len *
         (flashmla::kHeadDimQK + flashmla::kHeadDimV);
}

double bytes_per_call(const Config& c, double mean_len) {
  const double elt = 2.0;  // bf16 / fp16
  return static_cast<double>(c.b) *
         (static_cast<double>(c.s_q) * c.h_q * flashmla::kHeadDimQK * elt +
          mean_len * flashmla::kHeadDimQK * elt +
          static_cast<double>(c.s_q) * c.h_q * flashmla::kHeadDimV * elt);
}

double roofline_us(double flop, double bytes, const Ceilings& ceil) {
  const double compute_s = flop / (ceil.gemm_tflops * 1e12);
  const double memory_s = bytes / (ceil.read_gbps * 1e9);
  return std::max(compute_s, memory_s) * 1e6;
}

}  // namespace bench
