// The bf16 instantiation of the wide decode kernel (64-row tiles; its own translation unit, so the
// kernels compile in parallel).
#include "kernels/sm90/decode_wgmma_kernel.cuh"

namespace flashmla::sm90 {

void launch_decode_wide_bf16(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_wide<__nv_bfloat16>(params, stream);
}

}  // namespace flashmla::sm90
