// The one dispatch of the SM90 decode path: dtype x query rows per tile.
#include <string>

#include "common/split_plan.h"
#include "host/cuda_check.h"
#include "kernels/sm90/kernels.h"
#include "kernels/sm90/launch.h"

namespace flashmla::sm90 {

void launch_decode(const DecodeParams& params, cudaStream_t stream) {
  if (params.batch <= 0) return;
  using Launcher = void (*)(const DecodeParams&, cudaStream_t);
  // The 64-row tiles: one-page or seesaw schedule (params.seesaw, from WideSchedule).
  const Launcher wide[2][2] = {{launch_decode_wide_bf16, launch_decode_wide_fp16},
                               {launch_decode_seesaw_bf16, launch_decode_seesaw_fp16}};
  const int schedule = params.seesaw ? 1 : 0;
  Launcher by_rows[2][3] = {
      {launch_decode_narrow16_bf16, launch_decode_narrow32_bf16, wide[schedule][0]},
      {launch_decode_narrow16_fp16, launch_decode_narrow32_fp16, wide[schedule][1]},
  };
  int dtype = 0;
  switch (params.dtype) {
    case DType::bf16:
      dtype = 0;
      break;
    case DType::fp16:
      dtype = 1;
      break;
    default:
      throw Error("dtype: expected bf16 or fp16, got " + std::to_string(static_cast<int>(params.dtype)));
  }
  const int tile_rows = plan::decode_tile_rows(params.rows_per_kv);
  const int width = tile_rows == 16 ? 0 : (tile_rows == 32 ? 1 : 2);
  by_rows[dtype][width](params, stream);
}

}  // namespace flashmla::sm90
