#include "host/params.h"

#include <cmath>

#include "common/split_plan.h"

namespace flashmla {

MetadataParams make_metadata_params(const MetadataArgs& args) {
  MetadataParams p{};
  p.cache_seqlens = args.cache_seqlens;
  p.batch = args.batch;
  p.num_sm_parts = args.num_sm_parts;
  p.rows_per_kv = args.num_q_tokens_per_head_k;
  p.tile_metadata = args.tile_scheduler_metadata;
  p.num_splits = args.num_splits;
  return p;
}

DecodeParams make_decode_params(const DecodeArgs& args) {
  DecodeParams p{};
  p.dtype = args.dtype;
  p.batch = args.batch;
  p.seqlen_q = args.seqlen_q;
  p.num_heads_q = args.num_heads_q;
  p.num_heads_kv = args.num_heads_kv;
  p.q_heads_per_kv = args.num_heads_q / args.num_heads_kv;
  p.rows_per_kv = args.seqlen_q * p.q_heads_per_kv;
  p.num_row_tiles = plan::num_row_tiles(p.rows_per_kv);
  p.num_blocks = args.num_blocks;
  p.max_blocks_per_seq = args.max_blocks_per_seq;
  p.num_sm_parts = args.num_sm_parts;
  // automatic is the one-page kernel: what would pick the seesaw is a part's real pages, which the
  // host does not see, and the block table's width overstates them by as much as an engine pads it
  // (docs/decisions.md, "The wide schedule").
  p.seesaw = plan::decode_tile_rows(p.rows_per_kv) == plan::kRowsPerTile && args.wide_schedule == WideSchedule::seesaw;
  p.causal = args.causal && args.seqlen_q > 1;
  p.softmax_scale = args.softmax_scale > 0.0f
                        ? args.softmax_scale
                        : static_cast<float>(1.0 / std::sqrt(static_cast<double>(args.head_dim)));
  p.scale_log2 = static_cast<float>(static_cast<double>(p.softmax_scale) * 1.4426950408889634);

  p.q = args.q;
  p.q_stride_b = args.q_stride[0];
  p.q_stride_s = args.q_stride[1];
  p.q_stride_h = args.q_stride[2];
  p.k_cache = args.k_cache;
  p.k_stride_block = args.k_stride[0];
  p.k_stride_token = args.k_stride[1];
  p.k_stride_head = args.k_stride[2];
  p.block_table = args.block_table;
  p.block_table_stride = args.block_table_stride[0];
  p.cache_seqlens = args.cache_seqlens;

  p.out = args.out;
  p.out_stride_b = args.out_stride[0];
  p.out_stride_s = args.out_stride[1];
  p.out_stride_h = args.out_stride[2];
  p.lse = args.lse;
  p.lse_stride_b = args.lse_stride[0];
  p.lse_stride_h = args.lse_stride[1];
  p.lse_stride_s = args.lse_stride[2];

  p.tile_metadata = args.tile_scheduler_metadata;
  p.num_splits = args.num_splits;
  const WorkspaceLayout w = workspace_layout(args.num_sm_parts, p.rows_per_kv, args.num_heads_kv);
  char* base = static_cast<char*>(args.workspace);
  p.partial_lse = w.max_slots > 0 ? reinterpret_cast<float*>(base + w.lse_offset) : nullptr;
  p.partial_o = w.max_slots > 0 ? reinterpret_cast<float*>(base + w.o_offset) : nullptr;
  p.max_partial_slots = w.max_slots;
  return p;
}

}  // namespace flashmla
