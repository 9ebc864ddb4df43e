// mla_decode_workspace_size: nothing for an unsplit plan, growing with the number of parts.
#include <gtest/gtest.h>

#include "flashmla/decode.h"

namespace flashmla {
namespace {

TEST(WorkspaceSize, ZeroForOnePart) {
  for (int rows : {1, 64, 128, 16384}) {
    for (int h_kv : {1, 2, 8}) EXPECT_EQ(mla_decode_workspace_size(1, rows, h_kv), 0u);
  }
}

TEST(WorkspaceSize, GrowsWithParts) {
  for (int rows : {1, 16, 128, 640}) {
    for (int h_kv : {1, 8}) {
      size_t previous = mla_decode_workspace_size(1, rows, h_kv);
      for (int parts = 2; parts <= 264; ++parts) {
        const size_t size = mla_decode_workspace_size(parts, rows, h_kv);
        ASSERT_GT(size, previous) << "parts " << parts << " rows " << rows << " h_kv " << h_kv;
        // Room for 2 * (parts - 1) partial rows of 512 floats plus their lse.
        ASSERT_GE(size, static_cast<size_t>(2 * (parts - 1)) * h_kv * rows * (512 + 1) * sizeof(float));
        ASSERT_EQ(size % 256, 0u);
        previous = size;
      }
    }
  }
}

TEST(WorkspaceSize, GrowsWithRowsAndKvHeads) {
  EXPECT_LT(mla_decode_workspace_size(8, 64, 1), mla_decode_workspace_size(8, 128, 1));
  EXPECT_LT(mla_decode_workspace_size(8, 64, 1), mla_decode_workspace_size(8, 64, 2));
}

TEST(WorkspaceSize, RejectsBadArguments) {
  EXPECT_THROW(mla_decode_workspace_size(0, 64, 1), Error);
  EXPECT_THROW(mla_decode_workspace_size(2, 0, 1), Error);
  EXPECT_THROW(mla_decode_workspace_size(2, 64, 0), Error);
}

}  // namespace
}  // namespace flashmla
