// Kernel launches with programmatic stream serialisation (PDL): the grid may be scheduled before
// the previous kernel of the stream has completed (once that kernel's CTAs have all executed
// griddepcontrol.launch_dependents, or exited), and must itself execute griddepcontrol.wait
// before it reads anything the previous kernel writes.
#pragma once

#include <cuda_runtime_api.h>

#include "host/cuda_check.h"

namespace flashmla::sm90 {

inline cudaLaunchAttribute cluster_attribute(unsigned cluster_y) {
  cudaLaunchAttribute a = {};
  a.id = cudaLaunchAttributeClusterDimension;
  a.val.clusterDim.x = 1;
  a.val.clusterDim.y = cluster_y;
  a.val.clusterDim.z = 1;
  return a;
}

// cluster_y > 1: the grid runs as clusters of cluster_y CTAs along y (grid.y a multiple of it).
// cooperative: all CTAs are resident at once and may meet at grid barriers (the caller checked
// that the grid fits).
template <typename Kernel, typename... Args>
void launch_programmatic_clustered(Kernel kernel, dim3 grid, unsigned cluster_y, int threads, unsigned smem_bytes,
                                   cudaStream_t stream, const char* what, bool cooperative, const Args&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute[3];
  unsigned n = 0;
  attribute[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[n++].val.programmaticStreamSerializationAllowed = 1;
  if (cluster_y > 1) attribute[n++] = cluster_attribute(cluster_y);
  if (cooperative) {
    attribute[n].id = cudaLaunchAttributeCooperative;
    attribute[n++].val.cooperative = 1;
  }
  config.attrs = attribute;
  config.numAttrs = n;
  cuda_check(cudaLaunchKernelEx(&config, kernel, args...), what);
}

template <typename Kernel, typename... Args>
void launch_programmatic(Kernel kernel, dim3 grid, int threads, unsigned smem_bytes, cudaStream_t stream,
                         const char* what, const Args&... args) {
  launch_programmatic_clustered(kernel, grid, 1u, threads, smem_bytes, stream, what, false, args...);
}

// How many clusters of cluster_y CTAs of `kernel` (threads, smem_bytes) the device can hold at
// once; 0 when it cannot launch them. A host query, no stream work.
template <typename Kernel>
int max_active_clusters(Kernel kernel, unsigned cluster_y, int threads, unsigned smem_bytes) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(1, cluster_y, 1);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem_bytes;
  cudaLaunchAttribute attribute[1] = {cluster_attribute(cluster_y)};
  config.attrs = attribute;
  config.numAttrs = 1;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();   // not sticky: the launch then simply goes without clusters
    return 0;
  }
  return clusters;
}

// How many CTAs of `kernel` (threads, smem_bytes) a cooperative launch may have on this device:
// 0 when it does not support cooperative launches. A host query, no stream work.
template <typename Kernel>
int max_cooperative_ctas(Kernel kernel, int device, int threads, unsigned smem_bytes) {
  int supported = 0, sms = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrCooperativeLaunch, device) != cudaSuccess || !supported ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem_bytes) != cudaSuccess) {
    (void)cudaGetLastError();   // not sticky: the call then merges with the combine kernel
    return 0;
  }
  return sms * per_sm;
}

}  // namespace flashmla::sm90
