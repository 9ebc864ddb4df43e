// dtype dispatch of the SM90 decode path.
#include <string>

#include "host/cuda_check.h"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/launch.h"

namespace flashmla::sm90 {

void launch_decode(const DecodeParams& params, cudaStream_t stream) {
  if (params.batch <= 0) return;
  switch (params.dtype) {
    case DType::bf16:
      launch_decode_bf16(params, stream);
      return;
    case DType::fp16:
      launch_decode_fp16(params, stream);
      return;
  }
  throw Error("dtype: expected bf16 or fp16, got " + std::to_string(static_cast<int>(params.dtype)));
}

}  // namespace flashmla::sm90
