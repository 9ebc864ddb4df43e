// Device-side plumbing of the GPU tests: RAII device buffers, CUDA return-code checks, and one
// HostCase run end to end through the public API (GPU metadata, workspace, decode).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "flashmla/decode.h"
#include "support/test_case.h"

namespace flashmla::testing {

inline void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
  }
}

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) { resize(bytes); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  void resize(size_t bytes) {
    if (ptr_ != nullptr) cuda_ok(cudaFree(ptr_), "cudaFree");
    ptr_ = nullptr;
    bytes_ = bytes;
    // cudaMalloc is 256-byte aligned, which the workspace requires; never size 0.
    cuda_ok(cudaMalloc(&ptr_, bytes > 0 ? bytes : 256), "cudaMalloc");
  }
  template <typename T>
  void upload(const std::vector<T>& host) {
    resize(host.size() * sizeof(T));
    if (!host.empty()) cuda_ok(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  }
  template <typename T>
  std::vector<T> download(size_t count) const {
    std::vector<T> host(count);
    if (count > 0) cuda_ok(cudaMemcpy(host.data(), ptr_, count * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
    return host;
  }
  // 0xFF bytes: NaN in bf16, fp16 and float32, so an element nobody writes cannot pass.
  // The device sync matters: the memset runs on the legacy stream, which a non-blocking stream
  // does not wait for.
  void poison() {
    cuda_ok(cudaMemset(ptr_, 0xFF, bytes_ > 0 ? bytes_ : 256), "cudaMemset");
    cuda_ok(cudaDeviceSynchronize(), "cudaMemset (sync)");
  }
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

inline int test_sm_count() {
  int device = 0;
  cuda_ok(cudaGetDevice(&device), "cudaGetDevice");
  return device_sm_count(device);
}

struct Plan {
  int num_sm_parts = 0;
  std::vector<int32_t> metadata;    // host copy, [num_sm_parts * 8]
  std::vector<int32_t> num_splits;  // host copy, [batch + 1]
};

struct DeviceOutput {
  std::vector<uint16_t> out;
  std::vector<float> lse;
};

// A HostCase uploaded to the device, with its split plan and workspace.
class DeviceCase {
 public:
  explicit DeviceCase(const HostCase& c) : case_(c) {
    q_.upload(c.q);
    k_.upload(c.k_cache);
    table_.upload(c.block_table);
    seqlens_.upload(c.seqlens);
    out_.resize(c.out_elements() * sizeof(uint16_t));
    lse_.resize(c.lse_elements() * sizeof(float));
    rows_ = c.spec.seqlen_q * (c.spec.num_heads_q / c.spec.num_heads_kv);
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  ~DeviceCase() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // GPU metadata from this case's device seqlens; returns the host copy for inspection.
  // num_sm_parts > 0 overrides the library's choice (fewer parts: longer ranges per CTA).
  Plan make_plan(int num_sm_parts = 0) {
    Plan plan;
    plan.num_sm_parts =
        num_sm_parts > 0 ? num_sm_parts : num_sm_parts_for(test_sm_count(), rows_, case_.spec.num_heads_kv);
    meta_.resize(static_cast<size_t>(plan.num_sm_parts) * kMetadataFields * sizeof(int32_t));
    splits_.resize(static_cast<size_t>(case_.spec.batch + 1) * sizeof(int32_t));
    meta_.poison();
    splits_.poison();
    MetadataArgs m;
    m.cache_seqlens = seqlens_.get<int32_t>();
    m.batch = case_.spec.batch;
    m.num_q_tokens_per_head_k = rows_;
    m.num_heads_kv = case_.spec.num_heads_kv;
    m.num_sm_parts = plan.num_sm_parts;
    m.tile_scheduler_metadata = meta_.get<int32_t>();
    m.num_splits = splits_.get<int32_t>();
    get_mla_metadata(Backend::cuda, m, stream_);
    cuda_ok(cudaStreamSynchronize(stream_), "metadata kernel");
    plan.metadata = meta_.download<int32_t>(static_cast<size_t>(plan.num_sm_parts) * kMetadataFields);
    plan.num_splits = splits_.download<int32_t>(case_.spec.batch + 1);
    num_sm_parts_ = plan.num_sm_parts;
    workspace_.resize(mla_decode_workspace_size(num_sm_parts_, rows_, case_.spec.num_heads_kv));
    return plan;
  }

  // Decode with the current plan. `other` supplies different q/k/table (same seqlens) to show
  // the plan is reusable. Outputs and workspace are poisoned first.
  DeviceOutput decode(const DeviceCase* other = nullptr) {
    const DeviceCase& src = other != nullptr ? *other : *this;
    if (num_sm_parts_ == 0) throw std::logic_error("decode before make_plan");
    out_.poison();
    lse_.poison();
    workspace_.poison();
    DecodeArgs a = src.case_.args(src.q_.get(), src.k_.get(), src.table_.get<int32_t>(), seqlens_.get<int32_t>(),
                                  out_.get(), lse_.get<float>());
    a.tile_scheduler_metadata = meta_.get<int32_t>();
    a.num_splits = splits_.get<int32_t>();
    a.num_sm_parts = num_sm_parts_;
    a.workspace = workspace_.get();
    a.workspace_bytes = workspace_.bytes();
    mla_decode(Backend::cuda, a, stream_);
    cuda_ok(cudaStreamSynchronize(stream_), "decode kernels");
    cuda_ok(cudaGetLastError(), "decode kernels (sticky error)");
    DeviceOutput o;
    o.out = out_.download<uint16_t>(case_.out_elements());
    o.lse = lse_.download<float>(case_.lse_elements());
    return o;
  }

  // Metadata and decode captured into one CUDA graph, then replayed (as a serving engine does).
  DeviceOutput decode_in_graph() {
    const int rows = rows_;
    num_sm_parts_ = num_sm_parts_for(test_sm_count(), rows, case_.spec.num_heads_kv);
    meta_.resize(static_cast<size_t>(num_sm_parts_) * kMetadataFields * sizeof(int32_t));
    splits_.resize(static_cast<size_t>(case_.spec.batch + 1) * sizeof(int32_t));
    workspace_.resize(mla_decode_workspace_size(num_sm_parts_, rows, case_.spec.num_heads_kv));
    meta_.poison();
    splits_.poison();
    workspace_.poison();
    out_.poison();
    lse_.poison();
    MetadataArgs m;
    m.cache_seqlens = seqlens_.get<int32_t>();
    m.batch = case_.spec.batch;
    m.num_q_tokens_per_head_k = rows;
    m.num_heads_kv = case_.spec.num_heads_kv;
    m.num_sm_parts = num_sm_parts_;
    m.tile_scheduler_metadata = meta_.get<int32_t>();
    m.num_splits = splits_.get<int32_t>();
    DecodeArgs a = case_.args(q_.get(), k_.get(), table_.get<int32_t>(), seqlens_.get<int32_t>(), out_.get(),
                              lse_.get<float>());
    a.tile_scheduler_metadata = meta_.get<int32_t>();
    a.num_splits = splits_.get<int32_t>();
    a.num_sm_parts = num_sm_parts_;
    a.workspace = workspace_.get();
    a.workspace_bytes = workspace_.bytes();
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    get_mla_metadata(Backend::cuda, m, stream_);
    mla_decode(Backend::cuda, a, stream_);
    cuda_ok(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    cuda_ok(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch");
    cuda_ok(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch (replay)");
    cuda_ok(cudaStreamSynchronize(stream_), "graph replay");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    DeviceOutput o;
    o.out = out_.download<uint16_t>(case_.out_elements());
    o.lse = lse_.download<float>(case_.lse_elements());
    return o;
  }

  const HostCase& host() const { return case_; }

 private:
  const HostCase& case_;
  DeviceBuffer q_, k_, table_, seqlens_, out_, lse_, meta_, splits_, workspace_;
  int rows_ = 0;
  int num_sm_parts_ = 0;
  cudaStream_t stream_ = nullptr;
};

// The CPU backend's answer, with sentinels so that an unwritten element cannot pass.
inline DeviceOutput reference_output(const HostCase& c) {
  DeviceOutput o;
  o.out.assign(c.out_elements(), 0x7fff);
  o.lse.assign(c.lse_elements(), -12345.0f);
  mla_decode(Backend::cpu, c.host_args(o.out.data(), o.lse.data()));
  return o;
}

// The CPU split plan for the same lengths and part count.
inline Plan cpu_plan(const std::vector<int32_t>& seqlens, int rows_per_kv, int num_heads_kv, int num_sm_parts) {
  Plan plan;
  plan.num_sm_parts = num_sm_parts;
  plan.metadata.assign(static_cast<size_t>(num_sm_parts) * kMetadataFields, -7);
  plan.num_splits.assign(seqlens.size() + 1, -7);
  MetadataArgs m;
  m.cache_seqlens = seqlens.data();
  m.batch = static_cast<int>(seqlens.size());
  m.num_q_tokens_per_head_k = rows_per_kv;
  m.num_heads_kv = num_heads_kv;
  m.num_sm_parts = num_sm_parts;
  m.tile_scheduler_metadata = plan.metadata.data();
  m.num_splits = plan.num_splits.data();
  get_mla_metadata(Backend::cpu, m);
  return plan;
}

}  // namespace flashmla::testing
