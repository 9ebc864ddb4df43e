// --check: before timing a configuration, run a cut-down case of it (at most 4 requests,
// lengths capped at 2048, same s_q / h_q / h_kv / causal / dtype, poisoned unused cache rows)
// on Backend::cuda and on the CPU reference, and compare with SPEC section 1's tolerances
// (flashmla::testing::compare_out / compare_lse). A second GPU run must be bit-identical.
// Built only when the tests' support library (target flashmla_test_support) exists.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "bench.h"
#include "cuda_check.h"

#if defined(FLASHMLA_BENCH_HAVE_TEST_SUPPORT)
#include "common/split_plan.h"
#include "support/test_case.h"
#endif

namespace bench {

#if defined(FLASHMLA_BENCH_HAVE_TEST_SUPPORT)

namespace {

struct DevMem {
  void* p = nullptr;
  explicit DevMem(size_t bytes) { BENCH_CUDA(cudaMalloc(&p, bytes == 0 ? 256 : bytes)); }
  ~DevMem() { cudaFree(p); }
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
};

template <typename T>
void upload(DevMem& dst, const std::vector<T>& src, cudaStream_t stream) {
  BENCH_CUDA(cudaMemcpyAsync(dst.p, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
}

}  // namespace

bool check_available() { return true; }

// A wide-tile row on the automatic schedule is checked under both schedules: its cut-down case
// need not take the one the timed row takes. The case, its plan and the CPU reference are shared.
bool check_config(const Config& c, int device, cudaStream_t stream) {
  namespace t = flashmla::testing;
  const int batch = std::min(c.b, 4);
  const int cap = std::min(c.s_k, 2048);
  t::CaseSpec spec;
  spec.dtype = c.dtype;
  spec.batch = batch;
  spec.seqlen_q = c.s_q;
  spec.num_heads_q = c.h_q;
  spec.num_heads_kv = c.h_kv;
  spec.causal = c.causal;
  spec.seed = 0xbe7c0000u + static_cast<uint64_t>(c.b * 131 + c.s_q * 17 + c.h_q + c.s_k);
  spec.seqlens = c.varlen ? t::random_seqlens(batch, std::min(c.s_q, cap), cap, 0.0, spec.seed)
                          : std::vector<int>(static_cast<size_t>(batch), cap);
  const t::HostCase hc = t::make_case(spec);

  DevMem dq(hc.q.size() * 2), dk(hc.k_cache.size() * 2), dtable(hc.block_table.size() * 4),
      dlens(hc.seqlens.size() * 4), dout(hc.out_elements() * 2), dlse(hc.lse_elements() * 4);
  upload(dq, hc.q, stream);
  upload(dk, hc.k_cache, stream);
  upload(dtable, hc.block_table, stream);
  upload(dlens, hc.seqlens, stream);

  const int q_tokens_per_kv = c.s_q * c.h_q / c.h_kv;
  const int parts = flashmla::num_sm_parts_for(flashmla::device_sm_count(device), q_tokens_per_kv, c.h_kv);
  DevMem dmeta(static_cast<size_t>(parts) * flashmla::kMetadataFields * 4), dsplits((batch + 1) * 4);
  const size_t ws_bytes = flashmla::mla_decode_workspace_size(parts, q_tokens_per_kv, c.h_kv);
  DevMem dws(ws_bytes);

  flashmla::MetadataArgs m;
  m.cache_seqlens = static_cast<const int32_t*>(dlens.p);
  m.batch = batch;
  m.num_q_tokens_per_head_k = q_tokens_per_kv;
  m.num_heads_kv = c.h_kv;
  m.num_sm_parts = parts;
  m.tile_scheduler_metadata = static_cast<int32_t*>(dmeta.p);
  m.num_splits = static_cast<int32_t*>(dsplits.p);
  flashmla::get_mla_metadata(flashmla::Backend::cuda, m, stream);

  flashmla::DecodeArgs a = hc.args(dq.p, dk.p, static_cast<const int32_t*>(dtable.p),
                                   static_cast<const int32_t*>(dlens.p), dout.p, static_cast<float*>(dlse.p));
  a.tile_scheduler_metadata = m.tile_scheduler_metadata;
  a.num_sm_parts = parts;
  a.num_splits = m.num_splits;
  a.workspace = dws.p;
  a.workspace_bytes = ws_bytes == 0 ? 256 : ws_bytes;

  std::vector<uint16_t> ref_out(hc.out_elements());
  std::vector<float> ref_lse(hc.lse_elements());
  flashmla::mla_decode(flashmla::Backend::cpu, hc.host_args(ref_out.data(), ref_lse.data()));

  const bool wide = flashmla::plan::decode_tile_rows(q_tokens_per_kv) == flashmla::plan::kRowsPerTile;
  std::vector<flashmla::WideSchedule> schedules{c.wide_schedule};
  if (wide && c.wide_schedule == flashmla::WideSchedule::automatic) {
    schedules = {flashmla::WideSchedule::one_page, flashmla::WideSchedule::seesaw};
  }
  bool all_ok = true;
  for (const flashmla::WideSchedule schedule : schedules) {
    a.wide_schedule = schedule;
    std::vector<uint16_t> out(hc.out_elements()), out2(hc.out_elements());
    std::vector<float> lse(hc.lse_elements()), lse2(hc.lse_elements());
    for (int run = 0; run < 2; ++run) {
      flashmla::mla_decode(flashmla::Backend::cuda, a, stream);
      BENCH_CUDA(cudaGetLastError());
      BENCH_CUDA(cudaMemcpyAsync(run ? out2.data() : out.data(), dout.p, out.size() * 2, cudaMemcpyDeviceToHost,
                                 stream));
      BENCH_CUDA(cudaMemcpyAsync(run ? lse2.data() : lse.data(), dlse.p, lse.size() * 4, cudaMemcpyDeviceToHost,
                                 stream));
      BENCH_CUDA(cudaStreamSynchronize(stream));
    }
    const t::Comparison co = t::compare_out(out, ref_out, c.dtype);
    const t::Comparison cl = t::compare_lse(lse, ref_lse);
    const bool deterministic = std::memcmp(out.data(), out2.data(), out.size() * 2) == 0 &&
                               std::memcmp(lse.data(), lse2.data(), lse.size() * 4) == 0;
    const bool named = schedule != c.wide_schedule;   // one of the two an automatic row is checked under
    std::fprintf(stderr,
                 "check %s%s%s (cut to b=%d, len<=%d): out max abs %.3g cos diff %.3g; lse max abs %.3g; %s%s\n",
                 describe(c).c_str(), named ? " wide_schedule=" : "",
                 named ? flashmla::wide_schedule_name(schedule) : "",
                 batch, cap, co.max_abs_error, co.cosine_diff, cl.max_abs_error, co.ok && cl.ok ? "ok" : "MISMATCH",
                 deterministic ? "" : " NONDETERMINISTIC");
    if (!co.ok) std::fprintf(stderr, "  out: %s\n", co.message.c_str());
    if (!cl.ok) std::fprintf(stderr, "  lse: %s\n", cl.message.c_str());
    all_ok = all_ok && co.ok && cl.ok && deterministic;
  }
  return all_ok;
}

#else  // no test support library

bool check_available() { return false; }

bool check_config(const Config&, int, cudaStream_t) {
  throw std::runtime_error("--check needs the tests' support library: configure with FLASHMLA_BUILD_TESTS=ON");
}

#endif

}  // namespace bench
