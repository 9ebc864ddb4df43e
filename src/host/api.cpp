// The one dispatch point of the public API: validate, then route to a backend.
#include <mutex>
#include <string>
#include <vector>

#include "common/decode_params.h"
#include "common/split_plan.h"
#include "cpu/cpu_backend.h"
#include "flashmla/decode.h"
#include "host/cuda_check.h"
#include "host/params.h"
#include "host/validate.h"
#include "kernels/sm90/launch.h"

namespace flashmla {
namespace {

struct DeviceInfo {
  int sm_count = 0;
  int major = 0;
  int minor = 0;
};

// Device properties are read once per device: the decode path must stay cheap on the host.
const DeviceInfo& current_device_info() {
  static std::mutex mutex;
  static std::vector<DeviceInfo> cache;
  int device = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<int>(cache.size()) <= device) cache.resize(device + 1);
  DeviceInfo& info = cache[device];
  if (info.sm_count == 0) {
    cuda_check(cudaDeviceGetAttribute(&info.major, cudaDevAttrComputeCapabilityMajor, device),
               "cudaDeviceGetAttribute(major)");
    cuda_check(cudaDeviceGetAttribute(&info.minor, cudaDevAttrComputeCapabilityMinor, device),
               "cudaDeviceGetAttribute(minor)");
    cuda_check(cudaDeviceGetAttribute(&info.sm_count, cudaDevAttrMultiProcessorCount, device),
               "cudaDeviceGetAttribute(multiProcessorCount)");
  }
  return info;
}

void require_hopper() {
  const DeviceInfo& info = current_device_info();
  if (info.major != 9 || info.minor != 0) {
    throw Error("device: expected compute capability 9.0 (Hopper: H100/H200/H800), got " +
                std::to_string(info.major) + "." + std::to_string(info.minor) +
                "; use Backend::cpu on other machines");
  }
}

}  // namespace

int device_sm_count(int device) {
  int count = 0;
  cuda_check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute(multiProcessorCount)");
  return count;
}

int num_sm_parts_for(int num_sms, int num_q_tokens_per_head_k, int num_heads_kv) {
  if (num_sms < 1) throw_invalid("num_sms", ">= 1", std::to_string(num_sms));
  if (num_q_tokens_per_head_k < 1)
    throw_invalid("num_q_tokens_per_head_k", ">= 1", std::to_string(num_q_tokens_per_head_k));
  if (num_heads_kv < 1) throw_invalid("num_heads_kv", ">= 1", std::to_string(num_heads_kv));
  const long long ctas_per_part =
      static_cast<long long>(plan::num_row_tiles(num_q_tokens_per_head_k)) * num_heads_kv;
  const long long parts = num_sms / ctas_per_part;
  return parts < 1 ? 1 : static_cast<int>(parts);
}

size_t mla_decode_workspace_size(int num_sm_parts, int num_q_tokens_per_head_k, int num_heads_kv) {
  if (num_sm_parts < 1) throw_invalid("num_sm_parts", ">= 1", std::to_string(num_sm_parts));
  if (num_q_tokens_per_head_k < 1)
    throw_invalid("num_q_tokens_per_head_k", ">= 1", std::to_string(num_q_tokens_per_head_k));
  if (num_heads_kv < 1) throw_invalid("num_heads_kv", ">= 1", std::to_string(num_heads_kv));
  return workspace_layout(num_sm_parts, num_q_tokens_per_head_k, num_heads_kv).total_bytes;
}

void get_mla_metadata(Backend backend, const MetadataArgs& args, cudaStream_t stream) {
  validate_metadata_args(backend, args);
  const MetadataParams params = make_metadata_params(args);
  switch (backend) {
    case Backend::cpu:
      cpu::compute_metadata(params);
      return;
    case Backend::cuda:
      require_hopper();
      sm90::launch_metadata(params, stream);
      cuda_check(cudaGetLastError(), "metadata kernel launch");
      return;
  }
  throw_invalid("backend", "cuda or cpu", std::to_string(static_cast<int>(backend)));
}

void mla_decode(Backend backend, const DecodeArgs& args, cudaStream_t stream) {
  validate_decode_args(backend, args);
  switch (backend) {
    case Backend::cpu:
      cpu::reference_decode(args);
      return;
    case Backend::cuda: {
      require_hopper();
      if (args.batch == 0) return;
      const DecodeParams params = make_decode_params(args);
      sm90::launch_decode(params, stream);
      cuda_check(cudaGetLastError(), "decode kernel launch");
      return;
    }
  }
  throw_invalid("backend", "cuda or cpu", std::to_string(static_cast<int>(backend)));
}

}  // namespace flashmla
