// The fp16 instantiations of the decode kernels (own translation unit: compiles in parallel).
// The TMA + wgmma kernel runs whenever the cache's TMA descriptor can be encoded; the mma.sync
// kernel is the fallback (validated layouts always encode, so it is not expected to run).
#include "kernels/sm90/decode_wgmma_kernel.cuh"

namespace flashmla::sm90 {

void launch_decode_fp16(const DecodeParams& params, cudaStream_t stream) {
  CUtensorMap kv_map;
  if (make_kv_tensor_map(params, &kv_map)) {
    launch_decode_wgmma_typed<__half>(params, kv_map, stream);
  } else {
    launch_decode_typed<__half>(params, stream);
  }
}

}  // namespace flashmla::sm90
