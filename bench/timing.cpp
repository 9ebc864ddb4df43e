// CUDA-event timing of back-to-back calls: `warmup` untimed calls, then `repeats` samples of
// `iters` calls each (or one launch of a CUDA graph of them) between two events on the same
// stream; per-call time = elapsed / iters. Reported: median, min, max over the repeats and the
// spread (max - min) / median, and the host's enqueue time per call.
#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "bench.h"
#include "cuda_check.h"

namespace bench {

double median_of(std::vector<double> v) {
  if (v.empty()) throw std::runtime_error("median_of: no samples");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Timing summarize(std::vector<double> samples) {
  if (samples.empty()) throw std::runtime_error("summarize: no samples");
  Timing t;
  t.median = median_of(samples);
  t.min = *std::min_element(samples.begin(), samples.end());
  t.max = *std::max_element(samples.begin(), samples.end());
  t.spread_pct = t.median > 0 ? 100.0 * (t.max - t.min) / t.median : 0.0;
  t.us_per_call = std::move(samples);
  return t;
}

namespace {

// The events, graph and executable graph of one timing, released on every path.
struct TimingResources {
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~TimingResources() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

}  // namespace

Timing time_calls(const std::function<void(int)>& call, int warmup, int repeats, int iters,
                  cudaStream_t stream, bool graph) {
  if (repeats < 1 || iters < 1) throw std::runtime_error("time_calls: repeats and iters must be >= 1");
  using clock = std::chrono::steady_clock;
  TimingResources res;
  BENCH_CUDA(cudaEventCreate(&res.start));
  BENCH_CUDA(cudaEventCreate(&res.stop));
  std::vector<double> samples, host;
  int k = 0;
  for (int i = 0; i < warmup; ++i) call(k++);
  BENCH_CUDA(cudaStreamSynchronize(stream));
  if (graph) {
    BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      for (int i = 0; i < iters; ++i) call(k++);
    } catch (...) {
      cudaGraph_t partial = nullptr;
      cudaStreamEndCapture(stream, &partial);
      if (partial) cudaGraphDestroy(partial);
      throw;
    }
    BENCH_CUDA(cudaStreamEndCapture(stream, &res.graph));
    BENCH_CUDA(cudaGraphInstantiate(&res.exec, res.graph, 0));
    BENCH_CUDA(cudaGraphLaunch(res.exec, stream));   // the graph's own first launch, untimed
    BENCH_CUDA(cudaStreamSynchronize(stream));
  }
  for (int r = 0; r < repeats; ++r) {
    BENCH_CUDA(cudaEventRecord(res.start, stream));
    const auto t0 = clock::now();
    if (graph) {
      BENCH_CUDA(cudaGraphLaunch(res.exec, stream));
    } else {
      for (int i = 0; i < iters; ++i) call(k++);
    }
    const auto t1 = clock::now();
    BENCH_CUDA(cudaEventRecord(res.stop, stream));
    BENCH_CUDA(cudaEventSynchronize(res.stop));
    BENCH_CUDA(cudaGetLastError());
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, res.start, res.stop));
    samples.push_back(1000.0 * ms / iters);
    host.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / iters);
  }
  Timing t = summarize(std::move(samples));
  t.host_median = median_of(host);
  t.host_us_per_call = std::move(host);
  return t;
}

}  // namespace bench
