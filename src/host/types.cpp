#include "flashmla/types.h"

namespace flashmla {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::bf16: return "bf16";
    case DType::fp16: return "fp16";
  }
  return "unknown dtype";
}

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::cuda: return "cuda";
    case Backend::cpu: return "cpu";
  }
  return "unknown backend";
}

const char* wide_schedule_name(WideSchedule schedule) {
  switch (schedule) {
    case WideSchedule::automatic: return "automatic";
    case WideSchedule::one_page: return "one_page";
    case WideSchedule::seesaw: return "seesaw";
  }
  return "unknown wide schedule";
}

}  // namespace flashmla
