// Which kernel a call's 64-row tiles run (DecodeParams::seesaw), from DecodeArgs::wide_schedule.
#include <gtest/gtest.h>

#include <tuple>

#include "host/params.h"

namespace flashmla::testing {
namespace {

DecodeArgs wide_call(int batch, int seqlen_q, int heads_q, int table_blocks, int parts) {
  DecodeArgs a;
  a.batch = batch;
  a.seqlen_q = seqlen_q;
  a.num_heads_q = heads_q;
  a.num_heads_kv = 1;
  a.max_blocks_per_seq = table_blocks;
  a.num_sm_parts = parts;
  return a;
}

// automatic never takes the seesaw from the table's width: an engine that sizes its tables to its
// context limit (vLLM: max_model_len / 64 blocks) would get it for short requests, where it took
// 1.04-1.23x the one-page kernel's time (docs/perf-log.md, entry 130). The widths below are the
// grid's tight tables (141, 512, 1170) and such an engine's (2560, 1 << 20).
TEST(WideSchedule, AutomaticRunsTheOnePageKernelWhateverTheTableWidth) {
  for (const int width : {1, 141, 512, 1170, 2560, 1 << 20}) {
    for (const int batch : {1, 16, 128, 65536}) {
      for (const auto& [s_q, h_q, parts] : {std::tuple{1, 64, 132}, std::tuple{1, 128, 66}, std::tuple{2, 128, 33}}) {
        const DecodeParams p = make_decode_params(wide_call(batch, s_q, h_q, width, parts));
        EXPECT_FALSE(p.seesaw) << "b=" << batch << " s_q=" << s_q << " h_q=" << h_q << " width=" << width;
      }
    }
  }
}

// seesaw is honoured wherever the tiles are 64 rows, and has no kernel of its own for narrow tiles.
TEST(WideSchedule, SeesawWhenAskedForOnWideTilesOnly) {
  for (const int h_q : {16, 32, 33, 64, 128}) {
    DecodeArgs a = wide_call(4, 1, h_q, 8, 66);
    a.wide_schedule = WideSchedule::seesaw;
    EXPECT_EQ(make_decode_params(a).seesaw, h_q > 32) << "h_q=" << h_q;
    a.wide_schedule = WideSchedule::one_page;
    EXPECT_FALSE(make_decode_params(a).seesaw) << "h_q=" << h_q;
  }
}

}  // namespace
}  // namespace flashmla::testing
