#include "naive_attention.h"

#include <cmath>
#include <limits>

namespace flashmla::testing {

NaiveResult naive_attention(const HostCase& c) {
  const CaseSpec& s = c.spec;
  const int group = s.num_heads_q / s.num_heads_kv;
  const double scale = s.softmax_scale > 0 ? s.softmax_scale : 1.0 / std::sqrt(576.0);
  NaiveResult result;
  result.out.assign(c.out_elements(), 0.0);
  result.lse.assign(c.lse_elements(), std::numeric_limits<double>::infinity());

  for (int r = 0; r < s.batch; ++r) {
    const int len = c.seqlens[r];
    for (int kvh = 0; kvh < s.num_heads_kv; ++kvh) {
      // keys[t] = cache row of token t, found page by page through the table.
      std::vector<std::vector<double>> keys(len, std::vector<double>(576));
      for (int t = 0; t < len; ++t) {
        const int page = c.block_table[static_cast<size_t>(r) * c.max_blocks_per_seq + t / 64];
        const size_t offset = page * c.k_stride[0] + (t % 64) * c.k_stride[1] + kvh * c.k_stride[2];
        for (int e = 0; e < 576; ++e) keys[t][e] = half_bits_to_float(c.k_cache[offset + e], s.dtype);
      }
      for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int i = 0; i < s.seqlen_q; ++i) {
          int last = len - 1;                                   // last visible key
          if (s.causal && s.seqlen_q > 1) last = std::min(last, len - s.seqlen_q + i);
          if (last < 0) continue;                               // stays 0 / +inf
          const size_t q_offset = r * c.q_stride[0] + i * c.q_stride[1] + h * c.q_stride[2];
          std::vector<double> query(576);
          for (int e = 0; e < 576; ++e) query[e] = half_bits_to_float(c.q[q_offset + e], s.dtype);
          std::vector<double> score(last + 1);
          for (int t = 0; t <= last; ++t) {
            double dot = 0;
            for (int e = 0; e < 576; ++e) dot += query[e] * keys[t][e];
            score[t] = scale * dot;
          }
          double max_score = -std::numeric_limits<double>::infinity();
          for (double v : score) max_score = std::max(max_score, v);
          double sum = 0;
          for (double v : score) sum += std::exp(v - max_score);
          double* out = &result.out[((static_cast<size_t>(r) * s.seqlen_q + i) * s.num_heads_q + h) * 512];
          for (int t = 0; t <= last; ++t) {
            const double p = std::exp(score[t] - max_score) / sum;
            for (int e = 0; e < 512; ++e) out[e] += p * keys[t][e];
          }
          result.lse[(static_cast<size_t>(r) * s.num_heads_q + h) * s.seqlen_q + i] = max_score + std::log(sum);
        }
      }
    }
  }
  return result;
}

}  // namespace flashmla::testing
