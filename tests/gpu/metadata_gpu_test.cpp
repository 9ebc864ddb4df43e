// The GPU metadata kernel against the CPU plan, bit for bit, over batch sizes that cross the
// kernel's 1024-request chunks and part counts from 1 to the device's SM count.
#include <gtest/gtest.h>

#include <random>

#include "gpu/gpu_harness.h"

namespace flashmla::testing {
namespace {

Plan gpu_plan(const std::vector<int32_t>& seqlens, int rows_per_kv, int num_heads_kv, int num_sm_parts) {
  const int batch = static_cast<int>(seqlens.size());
  DeviceBuffer d_seqlens;
  d_seqlens.upload(seqlens);
  DeviceBuffer meta(static_cast<size_t>(num_sm_parts) * kMetadataFields * sizeof(int32_t));
  DeviceBuffer splits(static_cast<size_t>(batch + 1) * sizeof(int32_t));
  meta.poison();
  splits.poison();
  MetadataArgs m;
  m.cache_seqlens = batch > 0 ? d_seqlens.get<int32_t>() : nullptr;
  m.batch = batch;
  m.num_q_tokens_per_head_k = rows_per_kv;
  m.num_heads_kv = num_heads_kv;
  m.num_sm_parts = num_sm_parts;
  m.tile_scheduler_metadata = meta.get<int32_t>();
  m.num_splits = splits.get<int32_t>();
  get_mla_metadata(Backend::cuda, m, nullptr);
  cuda_ok(cudaDeviceSynchronize(), "metadata kernel");
  Plan plan;
  plan.num_sm_parts = num_sm_parts;
  plan.metadata = meta.download<int32_t>(static_cast<size_t>(num_sm_parts) * kMetadataFields);
  plan.num_splits = splits.download<int32_t>(batch + 1);
  return plan;
}

// rows_per_kv sets the plan's fixed cost a request (plan::request_fixed_cost: 2 up to 64 rows, 4 above).
void expect_same_plan(const std::vector<int32_t>& seqlens, int num_sm_parts, const std::string& what,
                      int rows_per_kv = 64) {
  const Plan gpu = gpu_plan(seqlens, rows_per_kv, 1, num_sm_parts);
  const Plan cpu = cpu_plan(seqlens, rows_per_kv, 1, num_sm_parts);
  ASSERT_EQ(gpu.metadata.size(), cpu.metadata.size()) << what;
  for (size_t i = 0; i < cpu.metadata.size(); ++i) {
    ASSERT_EQ(gpu.metadata[i], cpu.metadata[i])
        << what << ": part " << i / kMetadataFields << " field " << i % kMetadataFields;
  }
  ASSERT_EQ(gpu.num_splits.size(), cpu.num_splits.size()) << what;
  for (size_t i = 0; i < cpu.num_splits.size(); ++i) {
    ASSERT_EQ(gpu.num_splits[i], cpu.num_splits[i]) << what << ": num_splits[" << i << "]";
  }
}

TEST(GpuMetadata, MatchesCpuOnRandomBatches) {
  const int sms = test_sm_count();
  std::mt19937_64 rng(1234);
  const int batches[] = {0, 1, 2, 7, 64, 1023, 1024, 1025, 3000, 8192, 65536};
  const int max_lens[] = {0, 64, 5000, 200000};
  for (int batch : batches) {
    for (int max_len : max_lens) {
      for (int parts : {1, 7, sms / 2, sms}) {
        std::uniform_int_distribution<int> len(0, max_len);
        std::bernoulli_distribution zero(0.2);
        std::vector<int32_t> seqlens(batch);
        for (auto& s : seqlens) s = zero(rng) ? 0 : len(rng);
        for (int rows : {64, 128}) {
          expect_same_plan(seqlens, parts,
                           "batch " + std::to_string(batch) + " max_len " + std::to_string(max_len) + " parts " +
                               std::to_string(parts) + " rows " + std::to_string(rows),
                           rows);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(GpuMetadata, OneLongRequestAndFewParts) {
  expect_same_plan({32768}, test_sm_count(), "one long request");
  expect_same_plan({32768}, test_sm_count() / 2, "one long request, two row tiles", 128);
  expect_same_plan({1, 0, 0, 4096, 0, 63}, test_sm_count(), "short mix");
  expect_same_plan({0, 0, 0}, 3, "all empty");
}

// Fewer short requests than parts: the plan's last candidate, the largest request's cost as the
// span, wins (split_plan.h), which needs the kernel's maximum over the batch to be the CPU's; and
// near-ties that the combine's fixed cost decides (16 x 256 keys at 128 rows, 64 x 256 and 512 x
// 2048 at 16 rows), where both must score it alike.
TEST(GpuMetadata, ShortRequestsKeptWhole) {
  const int sms = test_sm_count();
  expect_same_plan(std::vector<int32_t>(16, 256), sms / 2, "16 x 256 keys, two row tiles", 128);
  expect_same_plan(std::vector<int32_t>(64, 256), sms, "64 x 256 keys, 16 rows", 16);
  expect_same_plan(std::vector<int32_t>(512, 2048), sms, "512 x 2048 keys, 16 rows", 16);
  expect_same_plan(std::vector<int32_t>(64, 256), sms, "64 x 256 keys", 64);
  expect_same_plan(std::vector<int32_t>(100, 256), sms, "100 x 256 keys", 64);
  expect_same_plan(std::vector<int32_t>(32, 512), sms / 2, "32 x 512 keys, two row tiles", 128);
  std::vector<int32_t> longest_last(60, 256);
  longest_last.push_back(1000);
  expect_same_plan(longest_last, sms, "60 x 256 keys and 1000", 64);
  std::vector<int32_t> longest_far(1500, 0);
  longest_far[1400] = 5000;
  expect_same_plan(longest_far, sms, "1500 requests, the only long one in the second chunk of 1024", 64);
}

}  // namespace
}  // namespace flashmla::testing
