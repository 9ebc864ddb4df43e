// The reference decode: float64 accumulation over the bf16/fp16 inputs, reading the cache only
// through the block table and only at visible keys, so garbage anywhere else cannot leak in.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/half_convert.h"

namespace flashmla::cpu {
namespace {

// Query rows handled together: they share the conversion of each cache page to float, and
// enough of them exist to keep every core busy even with one request and one kv head.
constexpr int kRowsPerTask = 8;

struct Task {
  int request;
  int kv_head;
  int row_begin;   // rows of the kv group: m = token * heads_per_kv + head offset
  int row_end;
};

class ReferenceDecoder {
 public:
  explicit ReferenceDecoder(const DecodeArgs& args)
      : a_(args),
        heads_per_kv_(args.num_heads_q / args.num_heads_kv),
        rows_per_kv_(args.seqlen_q * heads_per_kv_),
        causal_(args.causal && args.seqlen_q > 1),
        scale_(args.softmax_scale > 0.0f ? static_cast<double>(args.softmax_scale)
                                         : 1.0 / std::sqrt(static_cast<double>(args.head_dim))) {}

  void run(const Task& task) const {
    const int n = task.row_end - task.row_begin;
    const int seqlen = a_.cache_seqlens[task.request];
    const int dv = a_.head_dim_v;
    const int d = a_.head_dim;

    std::vector<double> q(static_cast<size_t>(n) * d);
    std::vector<int> visible(n);   // keys [0, visible) are seen by the row
    for (int k = 0; k < n; ++k) {
      const int m = task.row_begin + k;
      const int token = m / heads_per_kv_;
      const int head = task.kv_head * heads_per_kv_ + m % heads_per_kv_;
      const uint16_t* src = static_cast<const uint16_t*>(a_.q) + task.request * a_.q_stride[0] +
                            token * a_.q_stride[1] + head * a_.q_stride[2];
      for (int c = 0; c < d; ++c) q[static_cast<size_t>(k) * d + c] = half_to_float(src[c], a_.dtype);
      int limit = seqlen;
      if (causal_) limit = std::min(seqlen, seqlen - a_.seqlen_q + token + 1);
      visible[k] = std::max(limit, 0);
    }
    const int keys = *std::max_element(visible.begin(), visible.end());

    std::vector<double> row_max(n, -std::numeric_limits<double>::infinity());
    std::vector<double> row_sum(n, 0.0);
    std::vector<double> acc(static_cast<size_t>(n) * dv, 0.0);
    std::vector<float> page(static_cast<size_t>(a_.page_block_size) * d);
    std::vector<double> scores(a_.page_block_size);

    const int32_t* table = a_.block_table + task.request * a_.block_table_stride[0];
    for (int first = 0; first < keys; first += a_.page_block_size) {
      const int in_page = std::min(a_.page_block_size, keys - first);
      const int64_t block = table[first / a_.page_block_size];
      const uint16_t* base = static_cast<const uint16_t*>(a_.k_cache) + block * a_.k_stride[0] +
                             task.kv_head * a_.k_stride[2];
      for (int t = 0; t < in_page; ++t) {
        const uint16_t* src = base + t * a_.k_stride[1];
        for (int c = 0; c < d; ++c) page[static_cast<size_t>(t) * d + c] = half_to_float(src[c], a_.dtype);
      }
      for (int k = 0; k < n; ++k) {
        const int count = std::min(in_page, visible[k] - first);
        if (count <= 0) continue;
        const double* qk = &q[static_cast<size_t>(k) * d];
        double page_max = -std::numeric_limits<double>::infinity();
        for (int t = 0; t < count; ++t) {
          const float* key = &page[static_cast<size_t>(t) * d];
          double dot = 0.0;
          for (int c = 0; c < d; ++c) dot += qk[c] * key[c];
          scores[t] = scale_ * dot;
          page_max = std::max(page_max, scores[t]);
        }
        // Rescale what was accumulated so far once per page, not once per key.
        const double new_max = std::max(row_max[k], page_max);
        const double rescale = std::exp(row_max[k] - new_max);   // exp(-inf) = 0 on the first page
        double* out_acc = &acc[static_cast<size_t>(k) * dv];
        if (rescale != 1.0) {
          for (int c = 0; c < dv; ++c) out_acc[c] *= rescale;
          row_sum[k] *= rescale;
        }
        row_max[k] = new_max;
        for (int t = 0; t < count; ++t) {
          const double p = std::exp(scores[t] - new_max);
          row_sum[k] += p;
          const float* value = &page[static_cast<size_t>(t) * d];
          for (int c = 0; c < dv; ++c) out_acc[c] += p * value[c];
        }
      }
    }

    for (int k = 0; k < n; ++k) {
      const int m = task.row_begin + k;
      const int token = m / heads_per_kv_;
      const int head = task.kv_head * heads_per_kv_ + m % heads_per_kv_;
      uint16_t* dst = static_cast<uint16_t*>(a_.out) + task.request * a_.out_stride[0] +
                      token * a_.out_stride[1] + head * a_.out_stride[2];
      float* lse = a_.lse + task.request * a_.lse_stride[0] + head * a_.lse_stride[1] +
                   token * a_.lse_stride[2];
      if (visible[k] == 0) {
        for (int c = 0; c < dv; ++c) dst[c] = double_to_half(0.0, a_.dtype);
        *lse = std::numeric_limits<float>::infinity();
        continue;
      }
      const double inv = 1.0 / row_sum[k];
      const double* out_acc = &acc[static_cast<size_t>(k) * dv];
      for (int c = 0; c < dv; ++c) dst[c] = double_to_half(out_acc[c] * inv, a_.dtype);
      *lse = static_cast<float>(row_max[k] + std::log(row_sum[k]));
    }
  }

  int rows_per_kv() const { return rows_per_kv_; }

 private:
  const DecodeArgs& a_;
  int heads_per_kv_;
  int rows_per_kv_;
  bool causal_;
  double scale_;
};

}  // namespace

void reference_decode(const DecodeArgs& args) {
  if (args.batch <= 0) return;
  const ReferenceDecoder decoder(args);
  std::vector<Task> tasks;
  for (int r = 0; r < args.batch; ++r) {
    for (int h = 0; h < args.num_heads_kv; ++h) {
      for (int m = 0; m < decoder.rows_per_kv(); m += kRowsPerTask) {
        tasks.push_back(Task{r, h, m, std::min(m + kRowsPerTask, decoder.rows_per_kv())});
      }
    }
  }
  // Each row is computed by exactly one task in a fixed order, so the thread count never
  // changes the result.
  std::atomic<size_t> next{0};
  auto worker = [&]() {
    for (size_t i = next++; i < tasks.size(); i = next++) decoder.run(tasks[i]);
  };
  const size_t hardware = std::max(1u, std::thread::hardware_concurrency());
  const size_t num_threads = std::min(hardware, tasks.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < num_threads; ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
}

}  // namespace flashmla::cpu
