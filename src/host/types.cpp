#include "flashmla/types.h"

#include <cstring>
#include <initializer_list>

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

bool wide_schedule_from_name(const char* name, WideSchedule& schedule) {
  if (name == nullptr) return false;
  for (const WideSchedule s : {WideSchedule::automatic, WideSchedule::one_page, WideSchedule::seesaw}) {
    if (std::strcmp(name, wide_schedule_name(s)) == 0) {
      schedule = s;
      return true;
    }
  }
  return false;
}

}  // namespace flashmla
