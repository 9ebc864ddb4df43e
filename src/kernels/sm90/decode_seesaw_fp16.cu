// The fp16 instantiation of the seesaw decode kernel (64-row tiles; its own
// translation unit, so the kernels compile in parallel).
#include "kernels/sm90/decode_seesaw_kernel.cuh"

namespace flashmla::sm90 {

void launch_decode_seesaw_fp16(const DecodeParams& params, cudaStream_t stream) {
  launch_decode_seesaw<__half>(params, stream);
}

}  // namespace flashmla::sm90
