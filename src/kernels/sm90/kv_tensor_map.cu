// TMA descriptors of the paged KV cache and of q, built on the host for every decode call (a few
// hundred nanoseconds each, no device work): pointers and strides change between calls and layers.
#include <cudaTypedefs.h>

#include <mutex>
#include <string>

#include "flashmla/error.h"

#include "kernels/sm90/kernels.h"
#include "kernels/sm90/smem_layout.cuh"

namespace flashmla::sm90 {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &status) ==
            cudaSuccess &&
        status == cudaDriverEntryPointSuccess) {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
    }
  });
  return fn;
}

CUresult encode_swizzled(CUtensorMap& map, DType dtype, const void* base, cuuint32_t rank, const cuuint64_t* dims,
                         const cuuint64_t* strides, const cuuint32_t* box) {
  const auto encode = encode_fn();
  if (encode == nullptr) return CUDA_ERROR_NOT_FOUND;
  const cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
  const CUtensorMapDataType type =
      dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return encode(&map, type, rank, const_cast<void*>(base), dims, strides, box, elem_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

}  // namespace

CUresult encode_swizzled_4d(CUtensorMap& map, DType dtype, const void* base, const cuuint64_t (&dims)[4],
                            const cuuint64_t (&strides)[3], const cuuint32_t (&box)[4]) {
  return encode_swizzled(map, dtype, base, 4, dims, strides, box);
}

namespace {

// 4-D view (channel, token in page, kv head, page) of k_cache; one box = 64 channels x 64 tokens
// of one head and page. Pages outside [0, num_blocks) read as zeros.
CUtensorMap make_kv_tensor_map(const DecodeParams& p) {
  if (encode_fn() == nullptr) {
    throw Error("k_cache: the CUDA driver does not provide cuTensorMapEncodeTiled (driver for CUDA >= 12.0 needed)");
  }
  CUtensorMap map;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(kHeadDim), 64, static_cast<cuuint64_t>(p.num_heads_kv),
                              static_cast<cuuint64_t>(p.num_blocks)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(p.k_stride_token) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_head) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_block) * 2};
  const cuuint32_t box[4] = {kChunkCols, 64, 1, 1};
  const CUresult rc = encode_swizzled_4d(map, p.dtype, p.k_cache, dims, strides, box);
  if (rc != CUDA_SUCCESS) {
    throw Error("k_cache: expected a layout TMA can describe (cuTensorMapEncodeTiled succeeds), got CUresult " +
                std::to_string(static_cast<int>(rc)));
  }
  return map;
}

// 5-D view (channel in chunk, token in page, chunk, kv head, page) of k_cache: one box = two
// chunks of 64 channels x 64 tokens, which land chunk after chunk as two of kv's boxes would.
CUtensorMap make_kv_pairs_tensor_map(const DecodeParams& p) {
  CUtensorMap map;
  const cuuint64_t dims[5] = {static_cast<cuuint64_t>(kChunkCols), 64, static_cast<cuuint64_t>(kHeadDim / kChunkCols),
                              static_cast<cuuint64_t>(p.num_heads_kv), static_cast<cuuint64_t>(p.num_blocks)};
  const cuuint64_t strides[4] = {static_cast<cuuint64_t>(p.k_stride_token) * 2, static_cast<cuuint64_t>(kChunkCols) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_head) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_block) * 2};
  const cuuint32_t box[5] = {kChunkCols, 64, 2, 1, 1};
  const CUresult rc = encode_swizzled(map, p.dtype, p.k_cache, 5, dims, strides, box);
  if (rc != CUDA_SUCCESS) {
    throw Error("k_cache: expected a layout TMA can describe as chunk pairs (cuTensorMapEncodeTiled succeeds), got "
                "CUresult " + std::to_string(static_cast<int>(rc)));
  }
  return map;
}

// 4-D view (channel, head, token, request) of q. A Q tile's rows m = i * q_heads_per_kv + j of one
// kv group are one box when the tile holds whole tokens (q_rows a multiple of q_heads_per_kv: box
// q_heads_per_kv heads x q_rows / q_heads_per_kv tokens) or part of one token (q_heads_per_kv a
// multiple of q_rows: box q_rows heads x 1 token); rows past the last token are outside the tensor
// and land as zeros, as the tile needs. Any other grouping, or a layout TMA cannot describe, keeps
// the cp.async loader (returns false).
bool make_q_tensor_map(const DecodeParams& p, int q_rows, CUtensorMap& map) {
  const int qpk = p.q_heads_per_kv;
  if (qpk <= 0 || !(q_rows % qpk == 0 || qpk % q_rows == 0)) return false;
  const cuuint32_t box_heads = static_cast<cuuint32_t>(q_rows % qpk == 0 ? qpk : q_rows);
  const cuuint32_t box_tokens = static_cast<cuuint32_t>(q_rows % qpk == 0 ? q_rows / qpk : 1);
  if (box_heads > 256 || box_tokens > 256) return false;
  // A dimension of extent 1 is never stepped over; give it a stride TMA accepts whatever the caller's.
  auto stride_bytes = [](int64_t elems, int extent, int64_t fallback) {
    return static_cast<cuuint64_t>(extent > 1 ? elems * 2 : fallback);
  };
  const cuuint64_t head_bytes = stride_bytes(p.q_stride_h, p.num_heads_q, 16 * 1024);
  const cuuint64_t token_bytes = stride_bytes(p.q_stride_s, p.seqlen_q, 16 * 1024);
  const cuuint64_t request_bytes = stride_bytes(p.q_stride_b, p.batch, 16 * 1024);
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(kHeadDim), static_cast<cuuint64_t>(p.num_heads_q),
                              static_cast<cuuint64_t>(p.seqlen_q), static_cast<cuuint64_t>(p.batch)};
  const cuuint64_t strides[3] = {head_bytes, token_bytes, request_bytes};
  const cuuint32_t box[4] = {kChunkCols, box_heads, box_tokens, 1};
  return encode_swizzled_4d(map, p.dtype, p.q, dims, strides, box) == CUDA_SUCCESS;
}

}  // namespace

DecodeMaps make_decode_maps(const DecodeParams& params, int q_rows) {
  DecodeMaps maps{};
  maps.kv = make_kv_tensor_map(params);
  if (params.seesaw) maps.kv_pairs = make_kv_pairs_tensor_map(params);
#ifdef FLASHMLA_EXPERIMENT_Q_CP_ASYNC
  maps.q_by_tma = 0;
#else
  maps.q_by_tma = make_q_tensor_map(params, q_rows, maps.q) ? 1 : 0;
#endif
  return maps;
}

}  // namespace flashmla::sm90
