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

}  // namespace flashmla
