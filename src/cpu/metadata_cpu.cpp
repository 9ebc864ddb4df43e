// The split plan on the host. Every decision comes from common/split_plan.h, the same code the
// GPU metadata kernel and the decode kernel run, so the plans agree field for field.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/split_plan.h"
#include "cpu/cpu_backend.h"

namespace flashmla::cpu {

void compute_metadata(const MetadataParams& params) {
  const int batch = params.batch;
  const int num_parts = params.num_sm_parts;
  const int fixed = plan::request_fixed_cost(params.rows_per_kv);

  // P_r: where request r starts on the line of cost units; starts[batch] is the total.
  std::vector<int64_t> starts(static_cast<size_t>(batch) + 1, 0);
  std::vector<int> seqlens(static_cast<size_t>(batch), 0);
  int64_t max_cost = 0;
  for (int r = 0; r < batch; ++r) {
    seqlens[r] = std::max(params.cache_seqlens[r], 0);
    const int64_t cost = plan::request_cost(seqlens[r], fixed);
    starts[r + 1] = starts[r] + cost;
    max_cost = std::max(max_cost, cost);
  }
  const int64_t total = starts[batch];
  int64_t spans[plan::kMaxPlanCandidates] = {};
  int64_t slots[plan::kMaxPlanCandidates] = {};
  const int candidates = plan::plan_candidates(num_parts);
  for (int k = 0; k < candidates; ++k) {
    spans[k] = plan::candidate_span(k, total, num_parts, max_cost);
    for (int r = 0; r < batch; ++r) {
      slots[k] += plan::request_partial_slots(starts[r], seqlens[r], spans[k], fixed);
    }
  }
  const int64_t span = spans[plan::pick_plan_candidate(spans, slots, candidates, num_parts, params.rows_per_kv)];

  auto row = [&](int part) { return params.tile_metadata + static_cast<int64_t>(part) * kMetadataFields; };
  for (int p = 0; p < num_parts; ++p) {
    int32_t* fields = row(p);
    fields[6] = 0;
    fields[7] = 0;
    if (static_cast<int64_t>(p) * span >= total) plan::write_idle_part(fields);
  }

  params.num_splits[0] = 0;
  for (int r = 0; r < batch; ++r) {
    plan::emit_part_bounds(r, starts[r], seqlens[r], span, total, num_parts, fixed, row);
    params.num_splits[r + 1] = params.num_splits[r] + plan::request_partial_slots(starts[r], seqlens[r], span, fixed);
  }
}

}  // namespace flashmla::cpu
