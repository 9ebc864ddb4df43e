// The fp16 instantiations of the narrow decode kernel (16- and 32-row tiles).
#include "kernels/sm90/decode_narrow_kernel.cuh"

namespace flashmla::sm90 {

void launch_decode_narrow16_fp16(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_narrow<__half, 16>(params, stream);
}

void launch_decode_narrow32_fp16(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_narrow<__half, 32>(params, stream);
}

}  // namespace flashmla::sm90
