// Argument checks for both backends. Everything a kernel would otherwise turn into an
// out-of-bounds access, a hang or a silent wrong answer is rejected here, on the host,
// before any work is queued; the process stays usable after the exception.
#include "host/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "common/split_plan.h"
#include "flashmla/decode.h"

namespace flashmla {

void throw_invalid(const std::string& argument, const std::string& expected,
                   const std::string& actual) {
  throw Error(argument + ": expected " + expected + ", got " + actual);
}

namespace {

using std::to_string;

constexpr int kMaxSeqlenQ = 1024;
constexpr int kMaxRowsPerKv = 16384;
// The split plan rounds lengths up to whole tiles in int32: keep that from overflowing.
constexpr int64_t kMaxCacheSeqlen = std::numeric_limits<int32_t>::max() - (plan::kBlockN - 1);

std::string indexed(const char* name, int64_t i) { return std::string(name) + "[" + to_string(i) + "]"; }

void check_backend(Backend backend) {
  if (backend != Backend::cuda && backend != Backend::cpu) {
    throw_invalid("backend", "cuda or cpu", to_string(static_cast<int>(backend)));
  }
}

void check_not_null(const void* ptr, const char* name) {
  if (ptr == nullptr) throw_invalid(name, "a non-null pointer", "nullptr");
}

// One dimension of a strided tensor, for the layout checks below.
struct Dim {
  int64_t extent;
  int64_t stride;
  int index;
};

// Innermost dimension contiguous (where required); the other dimensions of extent > 1 must
// have positive strides that, taken from the smallest up, each step over everything inside
// them, so no two logical elements share an address. Dimensions of extent 1 are never stepped
// over, so their strides are free (frameworks report arbitrary values for them). Any order of
// the outer dimensions is accepted (e.g. a transposed q or lse).
template <int N>
void check_layout(const char* name, const int64_t (&extent)[N], const int64_t (&stride)[N],
                  bool innermost_contiguous = true) {
  const int outer = innermost_contiguous ? N - 1 : N;
  if (innermost_contiguous && stride[N - 1] != 1) {
    throw_invalid(indexed(name, N - 1), "1 (innermost dimension contiguous)", to_string(stride[N - 1]));
  }
  Dim dims[N];
  int count = 0;
  for (int d = 0; d < outer; ++d) {
    if (extent[d] <= 1) continue;
    if (stride[d] <= 0) throw_invalid(indexed(name, d), "> 0", to_string(stride[d]));
    dims[count++] = Dim{extent[d], stride[d], d};
  }
  std::stable_sort(dims, dims + count, [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  // Elements covered by the dimensions inside the current one.
  int64_t inner_span = innermost_contiguous ? extent[N - 1] : 1;
  std::string inner_name = innermost_contiguous ? "the " + to_string(extent[N - 1]) + " contiguous elements"
                                                : "one element";
  for (int i = 0; i < count; ++i) {
    if (dims[i].stride < inner_span) {
      throw_invalid(indexed(name, dims[i].index),
                    ">= " + to_string(inner_span) + " (must not overlap " + inner_name + ")",
                    to_string(dims[i].stride));
    }
    const int64_t limit = std::numeric_limits<int64_t>::max() / dims[i].extent;
    inner_span = dims[i].stride > limit ? std::numeric_limits<int64_t>::max() : dims[i].stride * dims[i].extent;
    inner_name = "dimension " + to_string(dims[i].index) + " of extent " + to_string(dims[i].extent);
  }
}

// The GPU loads and stores 16-byte vectors of q, k_cache and out rows.
void check_cuda_alignment(const char* name, const void* ptr, const char* stride_name,
                          const int64_t* stride, int outer_dims) {
  if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) {
    throw_invalid(name, "a 16-byte aligned address (Backend::cuda)",
                  "an address with remainder " + to_string(reinterpret_cast<uintptr_t>(ptr) % 16));
  }
  for (int d = 0; d < outer_dims; ++d) {
    if (stride[d] % 8 != 0) {
      throw_invalid(indexed(stride_name, d), "a multiple of 8 elements (16 bytes, Backend::cuda)",
                    to_string(stride[d]));
    }
  }
}

void check_shapes(const DecodeArgs& a) {
  if (a.batch < 0) throw_invalid("batch", ">= 0", to_string(a.batch));
  if (a.seqlen_q < 1 || a.seqlen_q > kMaxSeqlenQ) {
    throw_invalid("seqlen_q", "in [1, " + to_string(kMaxSeqlenQ) + "]", to_string(a.seqlen_q));
  }
  if (a.num_heads_q < 1) throw_invalid("num_heads_q", ">= 1", to_string(a.num_heads_q));
  if (a.num_heads_kv < 1) throw_invalid("num_heads_kv", ">= 1", to_string(a.num_heads_kv));
  if (a.num_heads_q % a.num_heads_kv != 0) {
    throw_invalid("num_heads_q", "a multiple of num_heads_kv (" + to_string(a.num_heads_kv) + ")",
                  to_string(a.num_heads_q));
  }
  if (a.head_dim != kHeadDimQK) {
    throw_invalid("head_dim", to_string(kHeadDimQK) + " (512 + 64 RoPE channels; " +
                  "head_dim 512 is not supported)", to_string(a.head_dim));
  }
  if (a.head_dim_v != kHeadDimV) throw_invalid("head_dim_v", to_string(kHeadDimV), to_string(a.head_dim_v));
  if (a.page_block_size != kPageBlockSize) {
    throw_invalid("page_block_size", to_string(kPageBlockSize) + " (other page sizes are not supported yet)",
                  to_string(a.page_block_size));
  }
  if (a.batch > 0 && a.num_blocks < 1) throw_invalid("num_blocks", ">= 1", to_string(a.num_blocks));
  if (a.num_blocks < 0) throw_invalid("num_blocks", ">= 0", to_string(a.num_blocks));
  if (a.max_blocks_per_seq < 1) {
    throw_invalid("max_blocks_per_seq", ">= 1", to_string(a.max_blocks_per_seq));
  }
  if (a.dtype != DType::bf16 && a.dtype != DType::fp16) {
    throw_invalid("dtype", "bf16 or fp16", to_string(static_cast<int>(a.dtype)));
  }
  const int64_t rows = static_cast<int64_t>(a.seqlen_q) * (a.num_heads_q / a.num_heads_kv);
  if (rows > kMaxRowsPerKv) {
    throw_invalid("seqlen_q * num_heads_q / num_heads_kv", "<= " + to_string(kMaxRowsPerKv),
                  to_string(rows));
  }
  if (!std::isfinite(a.softmax_scale)) {
    throw_invalid("softmax_scale", "a finite value (<= 0 selects head_dim^-0.5)", to_string(a.softmax_scale));
  }
  if (a.wide_schedule != WideSchedule::automatic && a.wide_schedule != WideSchedule::one_page &&
      a.wide_schedule != WideSchedule::seesaw) {
    throw_invalid("wide_schedule", "automatic, one_page or seesaw", to_string(static_cast<int>(a.wide_schedule)));
  }
}

void check_pointers_and_layouts(Backend backend, const DecodeArgs& a) {
  check_not_null(a.q, "q");
  check_not_null(a.k_cache, "k_cache");
  check_not_null(a.block_table, "block_table");
  check_not_null(a.cache_seqlens, "cache_seqlens");
  check_not_null(a.out, "out");
  check_not_null(a.lse, "lse");

  const int64_t q_extent[4] = {a.batch, a.seqlen_q, a.num_heads_q, a.head_dim};
  check_layout("q_stride", q_extent, a.q_stride);
  const int64_t k_extent[4] = {a.num_blocks, a.page_block_size, a.num_heads_kv, a.head_dim};
  check_layout("k_stride", k_extent, a.k_stride);
  const int64_t out_extent[4] = {a.batch, a.seqlen_q, a.num_heads_q, a.head_dim_v};
  check_layout("out_stride", out_extent, a.out_stride);
  // lse holds scalars, so any non-overlapping layout works, including [b, s_q, h_q] memory order.
  const int64_t lse_extent[3] = {a.batch, a.num_heads_q, a.seqlen_q};
  check_layout("lse_stride", lse_extent, a.lse_stride, /*innermost_contiguous=*/false);
  if (a.block_table_stride[1] != 1) {
    throw_invalid("block_table_stride[1]", "1 (innermost dimension contiguous)",
                  to_string(a.block_table_stride[1]));
  }
  if (a.batch > 1 && a.block_table_stride[0] < a.max_blocks_per_seq) {
    throw_invalid("block_table_stride[0]", ">= max_blocks_per_seq (" + to_string(a.max_blocks_per_seq) + ")",
                  to_string(a.block_table_stride[0]));
  }

  if (backend == Backend::cuda) {
    check_cuda_alignment("q", a.q, "q_stride", a.q_stride, 3);
    check_cuda_alignment("k_cache", a.k_cache, "k_stride", a.k_stride, 3);
    check_cuda_alignment("out", a.out, "out_stride", a.out_stride, 3);
  }
}

void check_split_plan(const DecodeArgs& a) {
  check_not_null(a.tile_scheduler_metadata, "tile_scheduler_metadata");
  check_not_null(a.num_splits, "num_splits");
  if (a.num_sm_parts < 1) throw_invalid("num_sm_parts", ">= 1", to_string(a.num_sm_parts));
  const int rows = a.seqlen_q * (a.num_heads_q / a.num_heads_kv);
  const size_t needed = mla_decode_workspace_size(a.num_sm_parts, rows, a.num_heads_kv);
  if (a.workspace_bytes < needed) {
    throw_invalid("workspace_bytes", ">= mla_decode_workspace_size(" + to_string(a.num_sm_parts) + ", " +
                  to_string(rows) + ", " + to_string(a.num_heads_kv) + ") = " + to_string(needed),
                  to_string(a.workspace_bytes));
  }
  if (needed > 0) {
    check_not_null(a.workspace, "workspace");
    if (reinterpret_cast<uintptr_t>(a.workspace) % 256 != 0) {
      throw_invalid("workspace", "a 256-byte aligned address",
                    "an address with remainder " + to_string(reinterpret_cast<uintptr_t>(a.workspace) % 256));
    }
  }
}

// Host data can be read, so the lengths and the table entries they use are checked too.
void check_host_data(const DecodeArgs& a) {
  const int64_t max_len = static_cast<int64_t>(a.max_blocks_per_seq) * a.page_block_size;
  for (int r = 0; r < a.batch; ++r) {
    const int32_t len = a.cache_seqlens[r];
    if (len < 0 || len > max_len) {
      throw_invalid(indexed("cache_seqlens", r),
                    "in [0, max_blocks_per_seq * page_block_size = " + to_string(max_len) + "]",
                    to_string(len));
    }
    const int64_t used = (static_cast<int64_t>(len) + a.page_block_size - 1) / a.page_block_size;
    const int32_t* row = a.block_table + static_cast<int64_t>(r) * a.block_table_stride[0];
    for (int64_t i = 0; i < used; ++i) {
      if (row[i] < 0 || row[i] >= a.num_blocks) {
        throw_invalid("block_table[" + to_string(r) + "][" + to_string(i) + "]",
                      "a page id in [0, num_blocks = " + to_string(a.num_blocks) + ")", to_string(row[i]));
      }
    }
  }
}

}  // namespace

void validate_decode_args(Backend backend, const DecodeArgs& args) {
  check_backend(backend);
  check_shapes(args);
  if (backend == Backend::cuda) {
    if (args.num_sm_parts < 1) throw_invalid("num_sm_parts", ">= 1", to_string(args.num_sm_parts));
  }
  // An empty batch is a no-op: its (empty) buffers may be null.
  if (args.batch == 0) return;
  check_pointers_and_layouts(backend, args);
  if (backend == Backend::cuda) {
    check_split_plan(args);
  } else {
    check_host_data(args);
  }
}

void validate_metadata_args(Backend backend, const MetadataArgs& args) {
  check_backend(backend);
  if (args.batch < 0) throw_invalid("batch", ">= 0", to_string(args.batch));
  if (args.num_q_tokens_per_head_k < 1) {
    throw_invalid("num_q_tokens_per_head_k", ">= 1", to_string(args.num_q_tokens_per_head_k));
  }
  if (args.num_q_tokens_per_head_k > kMaxRowsPerKv) {
    throw_invalid("num_q_tokens_per_head_k", "<= " + to_string(kMaxRowsPerKv),
                  to_string(args.num_q_tokens_per_head_k));
  }
  if (args.num_heads_kv < 1) throw_invalid("num_heads_kv", ">= 1", to_string(args.num_heads_kv));
  if (args.num_sm_parts < 1) throw_invalid("num_sm_parts", ">= 1", to_string(args.num_sm_parts));
  if (args.batch > 0) check_not_null(args.cache_seqlens, "cache_seqlens");
  check_not_null(args.tile_scheduler_metadata, "tile_scheduler_metadata");
  check_not_null(args.num_splits, "num_splits");
  if (backend == Backend::cpu) {
    for (int r = 0; r < args.batch; ++r) {
      const int32_t len = args.cache_seqlens[r];
      if (len < 0 || len > kMaxCacheSeqlen) {
        throw_invalid(indexed("cache_seqlens", r), "in [0, " + to_string(kMaxCacheSeqlen) + "]", to_string(len));
      }
    }
  }
}

}  // namespace flashmla
