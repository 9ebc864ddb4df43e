// Turns CUDA runtime failures into flashmla::Error carrying the CUDA error string.
#pragma once

#include <string>

#include <cuda_runtime_api.h>

#include "flashmla/error.h"

namespace flashmla {

inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string(what) + ": CUDA error " + cudaGetErrorName(status) + ": " +
                cudaGetErrorString(status));
  }
}

}  // namespace flashmla
