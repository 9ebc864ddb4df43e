// Every CUDA runtime / cuBLAS status the benchmark sees goes through these: a failure
// becomes a std::runtime_error naming the call, caught in main() -> message + exit code 1.
#pragma once

#include <stdexcept>
#include <string>

#include <cuda_runtime_api.h>

namespace bench {

inline void check_cuda(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed at " + file + ":" + std::to_string(line) +
                             ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
}

}  // namespace bench

#define BENCH_CUDA(expr) ::bench::check_cuda((expr), #expr, __FILE__, __LINE__)
