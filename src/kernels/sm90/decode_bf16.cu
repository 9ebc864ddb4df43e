// The bf16 instantiation of the decode kernel (its own translation unit: compiles in parallel).
#include "kernels/sm90/decode_wgmma_kernel.cuh"

namespace flashmla::sm90 {

void launch_decode_bf16(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_wgmma_typed<__nv_bfloat16>(params, stream);
}

}  // namespace flashmla::sm90
