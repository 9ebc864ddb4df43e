// One test per invalid get_mla_metadata argument: flashmla::Error naming the argument.
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "flashmla/decode.h"

namespace flashmla {
namespace {

struct Buffers {
  std::vector<int32_t> seqlens{10, 0, 300};
  std::vector<int32_t> metadata = std::vector<int32_t>(4 * kMetadataFields, 0);
  std::vector<int32_t> num_splits = std::vector<int32_t>(4, 0);

  MetadataArgs args() {
    MetadataArgs a;
    a.cache_seqlens = seqlens.data();
    a.batch = 3;
    a.num_q_tokens_per_head_k = 128;
    a.num_heads_kv = 1;
    a.num_sm_parts = 4;
    a.tile_scheduler_metadata = metadata.data();
    a.num_splits = num_splits.data();
    return a;
  }
};

struct BadCase {
  const char* name;
  std::function<void(Buffers&, MetadataArgs&)> mutate;
  const char* argument;
};

void PrintTo(const BadCase& bad, std::ostream* os) { *os << bad.name; }

class ValidateMetadata : public ::testing::TestWithParam<BadCase> {};

TEST_P(ValidateMetadata, ThrowsNamingTheArgument) {
  Buffers b;
  MetadataArgs a = b.args();
  ASSERT_NO_THROW(get_mla_metadata(Backend::cpu, a));
  GetParam().mutate(b, a);
  try {
    get_mla_metadata(Backend::cpu, a);
    FAIL() << "no flashmla::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(GetParam().argument), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected"), std::string::npos) << e.what();
  }
}

const BadCase kBadCases[] = {
    {"negative_batch", [](Buffers&, MetadataArgs& a) { a.batch = -2; }, "batch"},
    {"tokens_per_head_zero", [](Buffers&, MetadataArgs& a) { a.num_q_tokens_per_head_k = 0; },
     "num_q_tokens_per_head_k"},
    {"num_heads_kv_zero", [](Buffers&, MetadataArgs& a) { a.num_heads_kv = 0; }, "num_heads_kv"},
    {"num_sm_parts_zero", [](Buffers&, MetadataArgs& a) { a.num_sm_parts = 0; }, "num_sm_parts"},
    {"null_cache_seqlens", [](Buffers&, MetadataArgs& a) { a.cache_seqlens = nullptr; }, "cache_seqlens"},
    {"null_metadata", [](Buffers&, MetadataArgs& a) { a.tile_scheduler_metadata = nullptr; },
     "tile_scheduler_metadata"},
    {"null_num_splits", [](Buffers&, MetadataArgs& a) { a.num_splits = nullptr; }, "num_splits"},
    {"negative_seqlen", [](Buffers& b, MetadataArgs&) { b.seqlens[2] = -5; }, "cache_seqlens[2]"},
};

INSTANTIATE_TEST_SUITE_P(BadArguments, ValidateMetadata, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(ValidateMetadataAccepts, EmptyBatchWithNullSeqlens) {
  Buffers b;
  MetadataArgs a = b.args();
  a.batch = 0;
  a.cache_seqlens = nullptr;
  EXPECT_NO_THROW(get_mla_metadata(Backend::cpu, a));
  EXPECT_EQ(b.num_splits[0], 0);
}

TEST(ValidateMetadataRecovery, ValidCallAfterAnErrorStillWorks) {
  Buffers b;
  MetadataArgs a = b.args();
  a.num_sm_parts = -1;
  EXPECT_THROW(get_mla_metadata(Backend::cpu, a), Error);
  EXPECT_NO_THROW(get_mla_metadata(Backend::cpu, b.args()));
  EXPECT_EQ(b.num_splits[0], 0);
}

}  // namespace
}  // namespace flashmla
