// PyTorch binding of the torch-free flashmla library: the only place torch appears.
//
// Two custom ops in namespace `flash_mla` (fake/meta implementations live in Python,
// python/flash_mla/_ops.py, so both ops work under torch.compile and CUDA graph capture):
//
//   get_mla_metadata(Tensor cache_seqlens, int num_q_tokens_per_head_k, int num_heads_k)
//       -> (Tensor tile_scheduler_metadata [num_sm_parts, 8] int32, Tensor num_splits [b + 1] int32)
//   fwd_kvcache_mla(Tensor q, Tensor k_cache, Tensor block_table, Tensor cache_seqlens, int head_dim_v,
//                   Tensor tile_scheduler_metadata, Tensor num_splits, float softmax_scale, bool causal)
//       -> (Tensor out [b, s_q, h_q, 512] q.dtype, Tensor lse [b, h_q, s_q] float32)
//
// Error mapping (the message always names the argument, the expected and the actual value):
//   wrong dtype                                       -> TypeError
//   wrong device / rank / shape / stride / value      -> ValueError  (torch-side checks here, and
//                                                        flashmla::validate_decode_args)
//   anything the library reports while running (CUDA errors, unsupported GPU) -> RuntimeError
//
// Hot path: no host-device synchronisation, no Python, three caching-allocator allocations at most.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "flashmla/flashmla.h"

namespace flash_mla_torch {
namespace {

// ------------------------------------------------------------------ messages

// Error messages are assembled here, never by streaming numbers through std::ostream (what c10's
// multi-argument TORCH_CHECK does): in this extension, built against the image's torch, formatting an
// integer through the stream's locale facets crashed the process (seen on an H200, torch 2.11).
// A single std::string goes through c10 untouched.
std::string text(const std::string& s) { return s; }
std::string text(const char* s) { return s; }
std::string text(const c10::Device& d) { return d.str(); }
std::string text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
template <typename T>
  requires std::is_integral_v<T>
std::string text(T v) {
  return std::to_string(v);
}
std::string text(c10::IntArrayRef values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); ++i) s += (i ? ", " : "") + std::to_string(values[i]);
  return s + "]";
}
template <typename... Parts>
std::string msg(const Parts&... parts) {
  std::string s;
  ((s += text(parts)), ...);
  return s;
}

#define FLASHMLA_CHECK_VALUE(cond, ...) TORCH_CHECK_VALUE(cond, msg(__VA_ARGS__))
#define FLASHMLA_CHECK_TYPE(cond, ...) TORCH_CHECK_TYPE(cond, msg(__VA_ARGS__))

// ------------------------------------------------------------------ checks

void check_on_device(const at::Tensor& t, const char* name, const c10::Device& device) {
  FLASHMLA_CHECK_VALUE(t.is_cuda(), name, ": expected a CUDA tensor, got a tensor on ", t.device());
  FLASHMLA_CHECK_VALUE(t.device() == device, name, ": expected a tensor on ", device,
                    " (the device of the first tensor argument), got a tensor on ", t.device());
}

// Python spelling of a dtype, as users write it.
std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kInt: return "torch.int32";
    case at::kLong: return "torch.int64";
    case at::kShort: return "torch.int16";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kBool: return "torch.bool";
    case at::kFloat8_e4m3fn: return "torch.float8_e4m3fn";
    case at::kFloat8_e5m2: return "torch.float8_e5m2";
    default: return std::string("torch.") + c10::toString(t);
  }
}

void check_dtype(const at::Tensor& t, const char* name, at::ScalarType expected) {
  FLASHMLA_CHECK_TYPE(t.scalar_type() == expected, name, ": expected dtype ", dtype_name(expected), ", got ",
                   dtype_name(t.scalar_type()));
}

void check_rank(const at::Tensor& t, const char* name, int64_t rank, const char* layout) {
  FLASHMLA_CHECK_VALUE(t.dim() == rank, name, ": expected a ", rank, "-D tensor ", layout, ", got shape ",
                    t.sizes());
}

void check_size(const at::Tensor& t, const char* name, int64_t dim, int64_t expected, const char* what) {
  FLASHMLA_CHECK_VALUE(t.size(dim) == expected, name, ": expected size(", dim, ") == ", expected, " (", what,
                    "), got shape ", t.sizes());
}

// The last dimension must be contiguous (stride 1); a size-1 dimension has no meaningful stride.
void check_last_dim_contiguous(const at::Tensor& t, const char* name) {
  const int64_t last = t.dim() - 1;
  FLASHMLA_CHECK_VALUE(t.size(last) <= 1 || t.stride(last) == 1, name,
                    ": expected a contiguous last dimension (stride 1), got strides ", t.strides(),
                    " for shape ", t.sizes());
}

void check_contiguous(const at::Tensor& t, const char* name) {
  FLASHMLA_CHECK_VALUE(t.is_contiguous(), name, ": expected a contiguous tensor, got strides ", t.strides(),
                    " for shape ", t.sizes());
}

int to_int(int64_t value, const char* name) {
  FLASHMLA_CHECK_VALUE(value >= std::numeric_limits<int>::min() && value <= std::numeric_limits<int>::max(),
                    name, ": expected a value that fits in int32, got ", value);
  return static_cast<int>(value);
}

// ------------------------------------------------------------------ errors from the library

[[noreturn]] void raise_value_error(const flashmla::Error& e) { TORCH_CHECK_VALUE(false, e.what()); }
[[noreturn]] void raise_runtime_error(const flashmla::Error& e) { TORCH_CHECK(false, e.what()); }

// The schedule of the 64-row tiles: FLASH_MLA_WIDE_SCHEDULE=automatic|one_page|seesaw, read once a
// process (unset: automatic). A tuning and testing knob beside FlashMLA's API, which has no such
// argument (docs/design.md, "Which schedule runs a wide tile").
flashmla::WideSchedule wide_schedule_from_env() {
  static const flashmla::WideSchedule schedule = [] {
    const char* v = std::getenv("FLASH_MLA_WIDE_SCHEDULE");
    const std::string s = v == nullptr ? "" : v;
    flashmla::WideSchedule parsed = flashmla::WideSchedule::automatic;
    TORCH_CHECK_VALUE(s.empty() || flashmla::wide_schedule_from_name(s.c_str(), parsed),
                      "FLASH_MLA_WIDE_SCHEDULE: expected automatic, one_page or seesaw, got '", s, "'");
    return parsed;
  }();
  return schedule;
}

int sm_count(const c10::Device& device) {
  // torch caches device properties: no driver call after the first one per device.
  return at::cuda::getDeviceProperties(device.index())->multiProcessorCount;
}

// ------------------------------------------------------------------ get_mla_metadata

std::tuple<at::Tensor, at::Tensor> get_mla_metadata(const at::Tensor& cache_seqlens,
                                                    int64_t num_q_tokens_per_head_k, int64_t num_heads_k) {
  FLASHMLA_CHECK_VALUE(cache_seqlens.is_cuda(), "cache_seqlens: expected a CUDA tensor, got a tensor on ",
                    cache_seqlens.device());
  check_dtype(cache_seqlens, "cache_seqlens", at::kInt);
  check_rank(cache_seqlens, "cache_seqlens", 1, "[batch]");
  check_last_dim_contiguous(cache_seqlens, "cache_seqlens");
  FLASHMLA_CHECK_VALUE(num_q_tokens_per_head_k >= 1,
                    "num_q_tokens_per_head_k: expected >= 1 (seqlen_q * num_heads_q // num_heads_k), got ",
                    num_q_tokens_per_head_k);
  FLASHMLA_CHECK_VALUE(num_heads_k >= 1, "num_heads_k: expected >= 1, got ", num_heads_k);
  const int batch = to_int(cache_seqlens.size(0), "cache_seqlens.size(0)");
  const int ntok = to_int(num_q_tokens_per_head_k, "num_q_tokens_per_head_k");
  const int hkv = to_int(num_heads_k, "num_heads_k");

  const c10::Device device = cache_seqlens.device();
  const c10::cuda::CUDAGuard guard(device);
  int num_sm_parts = 0;
  try {
    num_sm_parts = flashmla::num_sm_parts_for(sm_count(device), ntok, hkv);
  } catch (const flashmla::Error& e) {
    raise_value_error(e);
  }

  const auto options = cache_seqlens.options().dtype(at::kInt);
  at::Tensor metadata = at::empty({num_sm_parts, flashmla::kMetadataFields}, options);
  at::Tensor num_splits = at::empty({static_cast<int64_t>(batch) + 1}, options);

  flashmla::MetadataArgs args;
  args.cache_seqlens = batch > 0 ? cache_seqlens.data_ptr<int32_t>() : nullptr;
  args.batch = batch;
  args.num_q_tokens_per_head_k = ntok;
  args.num_heads_kv = hkv;
  args.num_sm_parts = num_sm_parts;
  args.tile_scheduler_metadata = metadata.data_ptr<int32_t>();
  args.num_splits = num_splits.data_ptr<int32_t>();
  try {
    flashmla::validate_metadata_args(flashmla::Backend::cuda, args);
  } catch (const flashmla::Error& e) {
    raise_value_error(e);
  }
  try {
    flashmla::get_mla_metadata(flashmla::Backend::cuda, args, at::cuda::getCurrentCUDAStream(device.index()));
  } catch (const flashmla::Error& e) {
    raise_runtime_error(e);
  }
  return {metadata, num_splits};
}

// ------------------------------------------------------------------ fwd_kvcache_mla

std::tuple<at::Tensor, at::Tensor> fwd_kvcache_mla(const at::Tensor& q, const at::Tensor& k_cache,
                                                   const at::Tensor& block_table,
                                                   const at::Tensor& cache_seqlens, int64_t head_dim_v,
                                                   const at::Tensor& tile_scheduler_metadata,
                                                   const at::Tensor& num_splits, double softmax_scale,
                                                   bool causal) {
  // Device first: a CPU tensor anywhere is the most common mistake, and it makes every later check moot.
  FLASHMLA_CHECK_VALUE(q.is_cuda(), "q: expected a CUDA tensor, got a tensor on ", q.device());
  const c10::Device device = q.device();
  check_on_device(k_cache, "k_cache", device);
  check_on_device(block_table, "block_table", device);
  check_on_device(cache_seqlens, "cache_seqlens", device);
  check_on_device(tile_scheduler_metadata, "tile_scheduler_metadata", device);
  check_on_device(num_splits, "num_splits", device);

  const at::ScalarType dtype = q.scalar_type();
  FLASHMLA_CHECK_TYPE(dtype == at::kBFloat16 || dtype == at::kHalf,
                   "q: expected dtype torch.bfloat16 or torch.float16, got ", dtype_name(dtype));
  FLASHMLA_CHECK_TYPE(k_cache.scalar_type() == dtype, "k_cache: expected the dtype of q (", dtype_name(dtype),
                   "), got ", dtype_name(k_cache.scalar_type()),
                   k_cache.scalar_type() == at::kFloat8_e4m3fn || k_cache.scalar_type() == at::kByte
                       ? " (an FP8 KV cache is not implemented yet)"
                       : "");
  check_dtype(block_table, "block_table", at::kInt);
  check_dtype(cache_seqlens, "cache_seqlens", at::kInt);
  check_dtype(tile_scheduler_metadata, "tile_scheduler_metadata", at::kInt);
  check_dtype(num_splits, "num_splits", at::kInt);

  check_rank(q, "q", 4, "[batch, seqlen_q, num_heads_q, head_dim]");
  check_rank(k_cache, "k_cache", 4, "[num_blocks, page_block_size, num_heads_k, head_dim]");
  check_rank(block_table, "block_table", 2, "[batch, max_blocks_per_seq]");
  check_rank(cache_seqlens, "cache_seqlens", 1, "[batch]");
  check_rank(tile_scheduler_metadata, "tile_scheduler_metadata", 2, "[num_sm_parts, 8]");
  check_rank(num_splits, "num_splits", 1, "[batch + 1]");

  const int64_t batch = q.size(0);
  check_size(k_cache, "k_cache", 3, q.size(3), "head_dim, the last dimension of q");
  check_size(block_table, "block_table", 0, batch, "batch, q.size(0)");
  check_size(cache_seqlens, "cache_seqlens", 0, batch, "batch, q.size(0)");
  check_size(num_splits, "num_splits", 0, batch + 1, "batch + 1");
  check_size(tile_scheduler_metadata, "tile_scheduler_metadata", 1, flashmla::kMetadataFields,
             "fields per SM part");
  FLASHMLA_CHECK_VALUE(tile_scheduler_metadata.size(0) >= 1,
                    "tile_scheduler_metadata: expected at least one SM part (size(0) >= 1), got shape ",
                    tile_scheduler_metadata.sizes());

  check_last_dim_contiguous(q, "q");
  check_last_dim_contiguous(k_cache, "k_cache");
  check_last_dim_contiguous(block_table, "block_table");
  check_last_dim_contiguous(cache_seqlens, "cache_seqlens");
  check_contiguous(tile_scheduler_metadata, "tile_scheduler_metadata");
  check_contiguous(num_splits, "num_splits");

  FLASHMLA_CHECK_VALUE(head_dim_v == flashmla::kHeadDimV, "head_dim_v: expected ", flashmla::kHeadDimV,
                    ", got ", head_dim_v);
  FLASHMLA_CHECK_VALUE(std::isfinite(softmax_scale) && softmax_scale > 0.0,
                    "softmax_scale: expected a finite value > 0, got ", softmax_scale);

  flashmla::DecodeArgs args;
  args.dtype = dtype == at::kBFloat16 ? flashmla::DType::bf16 : flashmla::DType::fp16;
  args.batch = to_int(batch, "q.size(0) (batch)");
  args.seqlen_q = to_int(q.size(1), "q.size(1) (seqlen_q)");
  args.num_heads_q = to_int(q.size(2), "q.size(2) (num_heads_q)");
  args.num_heads_kv = to_int(k_cache.size(2), "k_cache.size(2) (num_heads_k)");
  args.head_dim = to_int(q.size(3), "q.size(3) (head_dim)");
  args.head_dim_v = static_cast<int>(head_dim_v);
  args.num_blocks = to_int(k_cache.size(0), "k_cache.size(0) (num_blocks)");
  args.page_block_size = to_int(k_cache.size(1), "k_cache.size(1) (page_block_size)");
  args.max_blocks_per_seq = to_int(block_table.size(1), "block_table.size(1) (max_blocks_per_seq)");
  args.softmax_scale = static_cast<float>(softmax_scale);
  args.causal = causal;
  args.wide_schedule = wide_schedule_from_env();

  const auto out_options = q.options();
  at::Tensor out = at::empty({batch, q.size(1), q.size(2), head_dim_v}, out_options);
  at::Tensor lse = at::empty({batch, q.size(2), q.size(1)}, out_options.dtype(at::kFloat));
  if (batch == 0) return {out, lse};  // nothing to compute (and nothing to validate pointers against)

  args.q = q.data_ptr();
  args.k_cache = k_cache.data_ptr();
  args.block_table = block_table.data_ptr<int32_t>();
  args.cache_seqlens = cache_seqlens.data_ptr<int32_t>();
  for (int i = 0; i < 4; ++i) {
    args.q_stride[i] = q.stride(i);
    args.k_stride[i] = k_cache.stride(i);
    args.out_stride[i] = out.stride(i);
  }
  args.block_table_stride[0] = block_table.stride(0);
  args.block_table_stride[1] = block_table.size(1) <= 1 ? 1 : block_table.stride(1);
  for (int i = 0; i < 3; ++i) args.lse_stride[i] = lse.stride(i);
  // A size-1 last dimension may carry any stride in torch; the library expects 1.
  if (q.size(3) <= 1) args.q_stride[3] = 1;
  if (k_cache.size(3) <= 1) args.k_stride[3] = 1;
  args.out = out.data_ptr();
  args.lse = lse.data_ptr<float>();

  args.tile_scheduler_metadata = tile_scheduler_metadata.data_ptr<int32_t>();
  args.num_sm_parts = to_int(tile_scheduler_metadata.size(0), "tile_scheduler_metadata.size(0) (num_sm_parts)");
  args.num_splits = num_splits.data_ptr<int32_t>();

  const c10::cuda::CUDAGuard guard(device);

  // The workspace size needs valid head counts; when they are not, leave it empty and let the
  // library's validation report the real problem.
  at::Tensor workspace;
  if (args.num_heads_kv >= 1 && args.num_heads_q >= 1 && args.seqlen_q >= 1 &&
      args.num_heads_q % args.num_heads_kv == 0) {
    const int ntok = args.seqlen_q * (args.num_heads_q / args.num_heads_kv);
    size_t bytes = 0;
    try {
      bytes = flashmla::mla_decode_workspace_size(args.num_sm_parts, ntok, args.num_heads_kv);
    } catch (const flashmla::Error& e) {
      raise_value_error(e);
    }
    if (bytes > 0) {
      // Through the caching allocator: reused across calls and safe under CUDA graph capture.
      workspace = at::empty({static_cast<int64_t>(bytes)}, out_options.dtype(at::kByte));
      args.workspace = workspace.data_ptr();
      args.workspace_bytes = bytes;
    }
  }

  try {
    flashmla::validate_decode_args(flashmla::Backend::cuda, args);
  } catch (const flashmla::Error& e) {
    raise_value_error(e);
  }
  try {
    flashmla::mla_decode(flashmla::Backend::cuda, args, at::cuda::getCurrentCUDAStream(device.index()));
  } catch (const flashmla::Error& e) {
    raise_runtime_error(e);
  }
  return {out, lse};
}

}  // namespace
}  // namespace flash_mla_torch

TORCH_LIBRARY(flash_mla, m) {
  m.def("get_mla_metadata(Tensor cache_seqlens, int num_q_tokens_per_head_k, int num_heads_k)"
        " -> (Tensor, Tensor)");
  m.def("fwd_kvcache_mla(Tensor q, Tensor k_cache, Tensor block_table, Tensor cache_seqlens, int head_dim_v,"
        " Tensor tile_scheduler_metadata, Tensor num_splits, float softmax_scale, bool causal)"
        " -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(flash_mla, CUDA, m) {
  m.impl("get_mla_metadata", &flash_mla_torch::get_mla_metadata);
  m.impl("fwd_kvcache_mla", &flash_mla_torch::fwd_kvcache_mla);
}

// CPU tensors: the same entry points, whose first check rejects them with a clear ValueError
// (without this, the dispatcher would raise an opaque "could not run ... with the CPU backend").
TORCH_LIBRARY_IMPL(flash_mla, CPU, m) {
  m.impl("get_mla_metadata", &flash_mla_torch::get_mla_metadata);
  m.impl("fwd_kvcache_mla", &flash_mla_torch::fwd_kvcache_mla);
}
