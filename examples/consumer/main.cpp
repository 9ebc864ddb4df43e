// Decodes one small MLA step with flashmla's public API: on the GPU when a Hopper GPU is present,
// always on the CPU backend, and reports how the two agree.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <cuda_runtime_api.h>

#include "flashmla/flashmla.h"

namespace {

uint16_t to_bf16(float x) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float from_bf16(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

struct Problem {
  int batch = 2, seqlen_q = 1, heads_q = 16, heads_kv = 1, pages_per_seq = 3;
  std::vector<int32_t> seqlens{130, 77};
  std::vector<uint16_t> q, cache;
  std::vector<int32_t> table;
  int num_blocks() const { return batch * pages_per_seq; }
};

Problem make_problem() {
  Problem p;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  p.q.resize(size_t(p.batch) * p.seqlen_q * p.heads_q * flashmla::kHeadDimQK);
  p.cache.resize(size_t(p.num_blocks()) * flashmla::kPageBlockSize * p.heads_kv * flashmla::kHeadDimQK);
  for (auto& x : p.q) x = to_bf16(u(rng));
  for (auto& x : p.cache) x = to_bf16(u(rng));
  for (int i = 0; i < p.batch * p.pages_per_seq; ++i) p.table.push_back(p.num_blocks() - 1 - i);
  return p;
}

flashmla::DecodeArgs args_for(const Problem& p, const void* q, const void* cache, const int32_t* table,
                              const int32_t* seqlens, void* out, float* lse) {
  flashmla::DecodeArgs a;
  a.dtype = flashmla::DType::bf16;
  a.batch = p.batch;
  a.seqlen_q = p.seqlen_q;
  a.num_heads_q = p.heads_q;
  a.num_heads_kv = p.heads_kv;
  a.num_blocks = p.num_blocks();
  a.max_blocks_per_seq = p.pages_per_seq;
  const int64_t d = flashmla::kHeadDimQK, dv = flashmla::kHeadDimV;
  a.q = q;
  a.q_stride[0] = p.seqlen_q * p.heads_q * d; a.q_stride[1] = p.heads_q * d; a.q_stride[2] = d;
  a.k_cache = cache;
  a.k_stride[0] = flashmla::kPageBlockSize * p.heads_kv * d; a.k_stride[1] = p.heads_kv * d; a.k_stride[2] = d;
  a.block_table = table;
  a.block_table_stride[0] = p.pages_per_seq;
  a.cache_seqlens = seqlens;
  a.out = out;
  a.out_stride[0] = p.seqlen_q * p.heads_q * dv; a.out_stride[1] = p.heads_q * dv; a.out_stride[2] = dv;
  a.lse = lse;
  a.lse_stride[0] = p.heads_q * p.seqlen_q; a.lse_stride[1] = p.seqlen_q;
  return a;
}

template <typename T>
T* to_device(const std::vector<T>& host) {
  T* ptr = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&ptr), host.size() * sizeof(T)) != cudaSuccess) throw flashmla::Error("cudaMalloc failed");
  cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return ptr;
}

bool has_hopper_gpu() {
  int count = 0, major = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) return false;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  return major == 9;
}

}  // namespace

int main() {
  try {
    const Problem p = make_problem();
    const size_t out_n = size_t(p.batch) * p.seqlen_q * p.heads_q * flashmla::kHeadDimV;
    const size_t lse_n = size_t(p.batch) * p.heads_q * p.seqlen_q;
    std::vector<uint16_t> out_cpu(out_n);
    std::vector<float> lse_cpu(lse_n);
    flashmla::mla_decode(flashmla::Backend::cpu,
                         args_for(p, p.q.data(), p.cache.data(), p.table.data(), p.seqlens.data(),
                                  out_cpu.data(), lse_cpu.data()));
    double checksum = 0;
    for (uint16_t h : out_cpu) checksum += from_bf16(h);
    std::printf("cpu backend: b=%d h_q=%d lens={%d,%d} out checksum %.6f lse[0] %.6f\n", p.batch, p.heads_q,
                p.seqlens[0], p.seqlens[1], checksum, lse_cpu[0]);

    if (!has_hopper_gpu()) {
      std::printf("no Hopper GPU found: ran the CPU backend only\n");
      return 0;
    }
    const int rows = p.seqlen_q * p.heads_q / p.heads_kv;
    const int parts = flashmla::num_sm_parts_for(flashmla::device_sm_count(0), rows, p.heads_kv);
    auto* q = to_device(p.q);
    auto* cache = to_device(p.cache);
    auto* table = to_device(p.table);
    auto* seqlens = to_device(p.seqlens);
    int32_t *meta = nullptr, *splits = nullptr;
    void *out = nullptr, *workspace = nullptr;
    float* lse = nullptr;
    const size_t ws = flashmla::mla_decode_workspace_size(parts, rows, p.heads_kv);
    cudaMalloc(reinterpret_cast<void**>(&meta), sizeof(int32_t) * parts * flashmla::kMetadataFields);
    cudaMalloc(reinterpret_cast<void**>(&splits), sizeof(int32_t) * (p.batch + 1));
    cudaMalloc(&out, out_n * 2);
    cudaMalloc(reinterpret_cast<void**>(&lse), lse_n * 4);
    if (ws) cudaMalloc(&workspace, ws);
    flashmla::MetadataArgs m;
    m.cache_seqlens = seqlens; m.batch = p.batch; m.num_q_tokens_per_head_k = rows;
    m.num_heads_kv = p.heads_kv; m.num_sm_parts = parts; m.tile_scheduler_metadata = meta; m.num_splits = splits;
    flashmla::get_mla_metadata(flashmla::Backend::cuda, m);
    auto a = args_for(p, q, cache, table, seqlens, out, lse);
    a.tile_scheduler_metadata = meta; a.num_sm_parts = parts; a.num_splits = splits;
    a.workspace = workspace; a.workspace_bytes = ws;
    flashmla::mla_decode(flashmla::Backend::cuda, a);
    std::vector<uint16_t> out_gpu(out_n);
    if (cudaMemcpy(out_gpu.data(), out, out_n * 2, cudaMemcpyDeviceToHost) != cudaSuccess)
      throw flashmla::Error("cudaMemcpy of the output failed");
    double max_diff = 0;
    for (size_t i = 0; i < out_n; ++i)
      max_diff = std::fmax(max_diff, std::fabs(from_bf16(out_gpu[i]) - from_bf16(out_cpu[i])));
    std::printf("gpu backend: max |gpu - cpu| = %.3g over %zu outputs\n", max_diff, out_n);
    return max_diff <= 1e-2 ? 0 : 1;
  } catch (const flashmla::Error& e) {
    std::fprintf(stderr, "flashmla error: %s\n", e.what());
    return 1;
  }
}
