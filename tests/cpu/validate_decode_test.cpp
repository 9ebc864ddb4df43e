// One test per invalid mla_decode argument: flashmla::Error is thrown and names the argument.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <ostream>
#include <string>

#include "run_cpu.h"

namespace flashmla::testing {
namespace {

// A valid two-request case with host buffers, plus fake device-side plan pointers so the
// Backend::cuda checks (pure host logic) can be exercised on a machine without a GPU.
struct Fixture {
  HostCase c;
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<int32_t> metadata;
  std::vector<int32_t> num_splits;
  alignas(256) static inline char workspace[1 << 22];

  Fixture() {
    CaseSpec spec;
    spec.batch = 2;
    spec.num_heads_q = 16;
    spec.seqlen_q = 2;
    spec.seqlens = {100, 64};
    c = make_case(spec);
    out.assign(c.out_elements(), 0);
    lse.assign(c.lse_elements(), 0);
    metadata.assign(8 * kMetadataFields, 0);
    num_splits.assign(3, 0);
  }

  DecodeArgs cpu_args() { return c.host_args(out.data(), lse.data()); }

  DecodeArgs cuda_args() {
    DecodeArgs a = cpu_args();
    a.tile_scheduler_metadata = metadata.data();
    a.num_splits = num_splits.data();
    a.num_sm_parts = 8;
    a.workspace = workspace;
    a.workspace_bytes = mla_decode_workspace_size(8, 32, 1);
    return a;
  }
};

struct BadCase {
  const char* name;
  Backend backend;
  std::function<void(Fixture&, DecodeArgs&)> mutate;
  const char* argument;   // must appear in the message
  int call_backend = -1;  // >= 0: validate with this (invalid) backend value instead
};

// Readable test parameters in gtest's output instead of a byte dump.
void PrintTo(const BadCase& bad, std::ostream* os) { *os << bad.name; }

class ValidateDecode : public ::testing::TestWithParam<BadCase> {};

TEST_P(ValidateDecode, ThrowsNamingTheArgument) {
  const BadCase& bad = GetParam();
  Fixture f;
  DecodeArgs args = bad.backend == Backend::cpu ? f.cpu_args() : f.cuda_args();
  ASSERT_NO_THROW(validate_decode_args(bad.backend, args)) << "the base case must be valid";
  bad.mutate(f, args);
  const Backend backend = bad.call_backend >= 0 ? static_cast<Backend>(bad.call_backend) : bad.backend;
  try {
    validate_decode_args(backend, args);
    FAIL() << "no flashmla::Error for " << bad.name;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(bad.argument), std::string::npos) << message;
    EXPECT_NE(message.find("expected"), std::string::npos) << message;
    EXPECT_NE(message.find("got"), std::string::npos) << message;
  }
  if (backend == Backend::cpu) {
    EXPECT_THROW(mla_decode(Backend::cpu, args), Error);
  }
}

void set_seqlen(Fixture& f, DecodeArgs& a, int r, int value) {
  f.c.seqlens[r] = value;
  a.cache_seqlens = f.c.seqlens.data();
}

const BadCase kBadCases[] = {
    {"negative_batch", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.batch = -1; }, "batch"},
    {"seqlen_q_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.seqlen_q = 0; }, "seqlen_q"},
    {"seqlen_q_too_large", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.seqlen_q = 1025; }, "seqlen_q"},
    {"num_heads_q_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.num_heads_q = 0; }, "num_heads_q"},
    {"num_heads_kv_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.num_heads_kv = 0; }, "num_heads_kv"},
    {"heads_not_divisible", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.num_heads_q = 3; a.num_heads_kv = 2; },
     "num_heads_q: expected a multiple of num_heads_kv (2), got 3"},
    {"head_dim_512", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.head_dim = 512; }, "head_dim"},
    {"head_dim_v", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.head_dim_v = 576; }, "head_dim_v"},
    {"page_block_size", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.page_block_size = 16; }, "page_block_size"},
    {"num_blocks_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.num_blocks = 0; }, "num_blocks"},
    {"max_blocks_per_seq_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.max_blocks_per_seq = 0; },
     "max_blocks_per_seq"},
    {"dtype", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.dtype = static_cast<DType>(7); }, "dtype"},
    {"backend", Backend::cpu, [](Fixture&, DecodeArgs&) {}, "backend", 5},
    {"too_many_rows", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.seqlen_q = 1024; a.num_heads_q = 32; },
     "seqlen_q * num_heads_q / num_heads_kv"},
    {"softmax_scale_nan", Backend::cpu,
     [](Fixture&, DecodeArgs& a) { a.softmax_scale = std::numeric_limits<float>::quiet_NaN(); }, "softmax_scale"},
    {"softmax_scale_inf", Backend::cpu,
     [](Fixture&, DecodeArgs& a) { a.softmax_scale = std::numeric_limits<float>::infinity(); }, "softmax_scale"},
    {"wide_schedule_out_of_range", Backend::cuda,
     [](Fixture&, DecodeArgs& a) { a.wide_schedule = static_cast<WideSchedule>(3); }, "wide_schedule"},
    {"null_q", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.q = nullptr; }, "q"},
    {"null_k_cache", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.k_cache = nullptr; }, "k_cache"},
    {"null_block_table", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.block_table = nullptr; }, "block_table"},
    {"null_cache_seqlens", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.cache_seqlens = nullptr; }, "cache_seqlens"},
    {"null_out", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.out = nullptr; }, "out"},
    {"null_lse", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.lse = nullptr; }, "lse"},
    {"q_innermost_stride", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.q_stride[3] = 2; }, "q_stride[3]"},
    {"q_head_stride_overlaps", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.q_stride[2] = 500; }, "q_stride[2]"},
    {"q_token_stride_overlaps", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.q_stride[1] = 576 * 8; }, "q_stride[1]"},
    {"q_batch_stride_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.q_stride[0] = 0; }, "q_stride[0]"},
    {"k_innermost_stride", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.k_stride[3] = 0; }, "k_stride[3]"},
    {"k_token_stride_overlaps", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.k_stride[1] = 100; }, "k_stride[1]"},
    {"k_block_stride_overlaps", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.k_stride[0] = 576 * 63; }, "k_stride[0]"},
    {"out_innermost_stride", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.out_stride[3] = 2; }, "out_stride[3]"},
    {"out_head_stride_overlaps", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.out_stride[2] = 511; }, "out_stride[2]"},
    {"out_batch_stride_negative", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.out_stride[0] = -1; }, "out_stride[0]"},
    {"lse_strides_overlap", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.lse_stride[1] = 1; }, "lse_stride"},
    {"lse_stride_zero", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.lse_stride[2] = 0; }, "lse_stride[2]"},
    {"block_table_innermost_stride", Backend::cpu, [](Fixture&, DecodeArgs& a) { a.block_table_stride[1] = 2; },
     "block_table_stride[1]"},
    {"block_table_row_stride", Backend::cpu,
     [](Fixture&, DecodeArgs& a) { a.block_table_stride[0] = a.max_blocks_per_seq - 1; }, "block_table_stride[0]"},
    {"seqlen_negative", Backend::cpu, [](Fixture& f, DecodeArgs& a) { set_seqlen(f, a, 1, -1); }, "cache_seqlens[1]"},
    {"seqlen_beyond_table", Backend::cpu,
     [](Fixture& f, DecodeArgs& a) { set_seqlen(f, a, 0, a.max_blocks_per_seq * 64 + 1); }, "cache_seqlens[0]"},
    {"block_id_out_of_range", Backend::cpu,
     [](Fixture& f, DecodeArgs&) { f.c.block_table[1 * f.c.max_blocks_per_seq + 0] = f.c.num_blocks; },
     "block_table[1][0]"},
    {"block_id_negative", Backend::cpu,
     [](Fixture& f, DecodeArgs&) { f.c.block_table[0 * f.c.max_blocks_per_seq + 1] = -3; }, "block_table[0][1]"},
    {"cuda_null_metadata", Backend::cuda, [](Fixture&, DecodeArgs& a) { a.tile_scheduler_metadata = nullptr; },
     "tile_scheduler_metadata"},
    {"cuda_null_num_splits", Backend::cuda, [](Fixture&, DecodeArgs& a) { a.num_splits = nullptr; }, "num_splits"},
    {"cuda_num_sm_parts_zero", Backend::cuda, [](Fixture&, DecodeArgs& a) { a.num_sm_parts = 0; }, "num_sm_parts"},
    {"cuda_workspace_too_small", Backend::cuda, [](Fixture&, DecodeArgs& a) { a.workspace_bytes -= 1; },
     "workspace_bytes"},
    {"cuda_null_workspace", Backend::cuda, [](Fixture&, DecodeArgs& a) { a.workspace = nullptr; }, "workspace"},
    {"cuda_misaligned_workspace", Backend::cuda,
     [](Fixture&, DecodeArgs& a) { a.workspace = static_cast<char*>(a.workspace) + 16; }, "workspace"},
    {"cuda_misaligned_q", Backend::cuda,
     [](Fixture&, DecodeArgs& a) { a.q = static_cast<const uint16_t*>(a.q) + 1; }, "q"},
    {"cuda_unaligned_out_stride", Backend::cuda,
     [](Fixture&, DecodeArgs& a) {
       a.out_stride[2] = 516;   // no overlap, but rows no longer 16-byte aligned
       a.out_stride[1] = 16 * 516;
       a.out_stride[0] = 2 * 16 * 516;
     },
     "out_stride[2]"},
};

INSTANTIATE_TEST_SUITE_P(BadArguments, ValidateDecode, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(ValidateDecodeRecovery, ValidCallAfterAnErrorStillWorks) {
  Fixture f;
  DecodeArgs bad = f.cpu_args();
  bad.head_dim = 512;
  EXPECT_THROW(mla_decode(Backend::cpu, bad), Error);
  const CpuOutput o = run_cpu(f.c);
  for (float v : o.lse) EXPECT_TRUE(std::isfinite(v));
}

TEST(ValidateDecodeMessages, HeadDim512SaysItIsNotSupported) {
  Fixture f;
  DecodeArgs a = f.cpu_args();
  a.head_dim = 512;
  try {
    validate_decode_args(Backend::cpu, a);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("got 512"), std::string::npos) << e.what();
  }
}

TEST(ValidateDecodeMessages, PageSizeSaysNotSupportedYet) {
  Fixture f;
  DecodeArgs a = f.cpu_args();
  a.page_block_size = 32;
  try {
    validate_decode_args(Backend::cpu, a);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not supported yet"), std::string::npos) << e.what();
  }
}

TEST(ValidateDecodeAccepts, TransposedLseAndSizeOneDimensionsWithOddStrides) {
  Fixture f;
  DecodeArgs a = f.cpu_args();
  a.lse_stride[0] = 32;   // [batch, s_q, h_q] memory order
  a.lse_stride[1] = 1;
  a.lse_stride[2] = 16;
  EXPECT_NO_THROW(validate_decode_args(Backend::cpu, a));
  a = f.cpu_args();
  a.seqlen_q = 1;          // extent 1: its stride is never used
  a.q_stride[1] = 0;
  a.out_stride[1] = 0;
  EXPECT_NO_THROW(validate_decode_args(Backend::cpu, a));
}

TEST(ValidateDecodeAccepts, EmptyBatchWithNullPointersOnBothBackends) {
  DecodeArgs a;
  a.batch = 0;
  a.num_heads_q = 16;
  a.max_blocks_per_seq = 1;
  a.num_sm_parts = 1;
  EXPECT_NO_THROW(validate_decode_args(Backend::cpu, a));
  EXPECT_NO_THROW(validate_decode_args(Backend::cuda, a));
}

// The bench's --wide_schedule and the binding's FLASH_MLA_WIDE_SCHEDULE both parse through this.
TEST(WideScheduleNames, EveryNameParsesBackAndOthersLeaveTheScheduleAlone) {
  for (const WideSchedule s : {WideSchedule::automatic, WideSchedule::one_page, WideSchedule::seesaw}) {
    WideSchedule parsed = s == WideSchedule::seesaw ? WideSchedule::automatic : WideSchedule::seesaw;
    ASSERT_TRUE(wide_schedule_from_name(wide_schedule_name(s), parsed)) << wide_schedule_name(s);
    EXPECT_EQ(parsed, s);
  }
  for (const char* bad : {"", "auto", "Seesaw", "one-page", "seesaw ", static_cast<const char*>(nullptr)}) {
    WideSchedule parsed = WideSchedule::one_page;
    EXPECT_FALSE(wide_schedule_from_name(bad, parsed)) << (bad ? bad : "(null)");
    EXPECT_EQ(parsed, WideSchedule::one_page);
  }
}

}  // namespace
}  // namespace flashmla::testing
