// Shared-memory tile layout of the decode kernel.
//
// A 64-row x 576-column 16-bit tile is stored as 9 column chunks of 64 x 64 elements
// (128-byte rows). Inside a chunk the eight 16-byte units of row `row` are permuted by
// XOR with (row % 8): this is exactly TMA's SWIZZLE_128B layout, so a later TMA/wgmma
// kernel can keep it, and it makes the 8 row addresses of every ldmatrix (and the row-wise
// cp.async writes) fall in 8 distinct bank groups.
#pragma once

#include <cstdint>

namespace flashmla::sm90 {

inline constexpr int kTileRows = 64;
inline constexpr int kHeadDim = 576;
inline constexpr int kDimV = 512;
inline constexpr int kChunkCols = 64;
inline constexpr int kChunkBytes = kTileRows * kChunkCols * 2;        // 8 KiB
inline constexpr int kTileBytes = kChunkBytes * (kHeadDim / kChunkCols); // 72 KiB
inline constexpr int kUnitsPerRow = kHeadDim / 8;                        // 16-byte units

// Byte offset of element (row, col) in a swizzled tile; col % 8 == 0 for 16-byte accesses.
__device__ __forceinline__ uint32_t swizzled_offset(int row, int col) {
  return static_cast<uint32_t>((col >> 6) * kChunkBytes + row * 128 +
                               ((((col >> 3) & 7) ^ (row & 7)) << 4) + (col & 7) * 2);
}

// Dynamic shared memory of one decode CTA.
struct DecodeSmem {
  static constexpr uint32_t kQ = 0;
  static constexpr uint32_t kK0 = kTileBytes;
  static constexpr uint32_t kK1 = 2 * kTileBytes;
  static constexpr uint32_t kP = 3 * kTileBytes;                 // 64 x 64 16-bit, one chunk
  static constexpr uint32_t kRowMax = kP + kChunkBytes;          // float[2][64]: per key half
  static constexpr uint32_t kRowSum = kRowMax + 2 * 64 * 4;      // float[2][64]
  static constexpr uint32_t kBytes = kRowSum + 2 * 64 * 4;
};
static_assert(DecodeSmem::kBytes <= 227 * 1024, "decode CTA must fit Hopper's 227 KiB per block");

}  // namespace flashmla::sm90
