// TMA descriptor of the paged KV cache, built on the host for every decode call (a few hundred
// nanoseconds, no device work): the cache pointer and strides change between calls and layers.
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

}  // namespace

// 4-D view (channel, token in page, kv head, page) of k_cache; one box = 64 channels x 64 tokens
// of one head and page, stored with the 128-byte swizzle the kernel's tile layout expects.
// Pages outside [0, num_blocks) read as zeros.
CUtensorMap make_kv_tensor_map(const DecodeParams& p) {
  const auto encode = encode_fn();
  if (encode == nullptr) {
    throw Error("k_cache: the CUDA driver does not provide cuTensorMapEncodeTiled (driver for CUDA >= 12.0 needed)");
  }
  CUtensorMap map;
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(kHeadDim), 64, static_cast<cuuint64_t>(p.num_heads_kv),
                              static_cast<cuuint64_t>(p.num_blocks)};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(p.k_stride_token) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_head) * 2,
                                 static_cast<cuuint64_t>(p.k_stride_block) * 2};
  const cuuint32_t box[4] = {kChunkCols, 64, 1, 1};
  const cuuint32_t elem_strides[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type =
      p.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult rc = encode(&map, type, 4, const_cast<void*>(p.k_cache), dims, strides, box, elem_strides,
                             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (rc != CUDA_SUCCESS) {
    throw Error("k_cache: expected a layout TMA can describe (cuTensorMapEncodeTiled succeeds), got CUresult " +
                std::to_string(static_cast<int>(rc)));
  }
  return map;
}

}  // namespace flashmla::sm90
