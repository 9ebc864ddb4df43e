// Kernel launches with programmatic stream serialisation (PDL): the grid may be scheduled before
// the previous kernel of the stream has completed (once that kernel's CTAs have all executed
// griddepcontrol.launch_dependents, or exited), and must itself execute griddepcontrol.wait
// before it reads anything the previous kernel writes.
#pragma once

#include <cuda_runtime_api.h>

#include "host/cuda_check.h"

namespace flashmla::sm90 {

template <typename Kernel, typename... Args>
void launch_programmatic(Kernel kernel, dim3 grid, int threads, unsigned smem_bytes, cudaStream_t stream,
                         const char* what, const Args&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  cuda_check(cudaLaunchKernelEx(&config, kernel, args...), what);
}

}  // namespace flashmla::sm90
