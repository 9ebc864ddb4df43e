// CUDA-event timing of back-to-back calls: `warmup` untimed calls, then `repeats` samples of
// `iters` calls each between two events on the same stream; per-call time = elapsed / iters.
// Reported: median, min, max over the repeats and the spread (max - min) / median.
#include <algorithm>
#include <stdexcept>

#include "bench.h"
#include "cuda_check.h"

namespace bench {

Timing summarize(std::vector<double> samples) {
  if (samples.empty()) throw std::runtime_error("summarize: no samples");
  Timing t;
  t.us_per_call = samples;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  t.median = n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  t.min = samples.front();
  t.max = samples.back();
  t.spread_pct = t.median > 0 ? 100.0 * (t.max - t.min) / t.median : 0.0;
  return t;
}

Timing time_calls(const std::function<void(int)>& call, int warmup, int repeats, int iters,
                  cudaStream_t stream) {
  if (repeats < 1 || iters < 1) throw std::runtime_error("time_calls: repeats and iters must be >= 1");
  cudaEvent_t start = nullptr, stop = nullptr;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> samples;
  try {
    int k = 0;
    for (int i = 0; i < warmup; ++i) call(k++);
    BENCH_CUDA(cudaStreamSynchronize(stream));
    for (int r = 0; r < repeats; ++r) {
      BENCH_CUDA(cudaEventRecord(start, stream));
      for (int i = 0; i < iters; ++i) call(k++);
      BENCH_CUDA(cudaEventRecord(stop, stream));
      BENCH_CUDA(cudaEventSynchronize(stop));
      BENCH_CUDA(cudaGetLastError());
      float ms = 0;
      BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
      samples.push_back(1000.0 * ms / iters);
    }
  } catch (...) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    throw;
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  return summarize(std::move(samples));
}

}  // namespace bench
