// Shared-memory tile layout of the decode kernel.
//
// A 64-row x 576-column 16-bit tile is stored as 9 column chunks of 64 x 64 elements
// (128-byte rows). Inside a chunk the eight 16-byte units of row `row` are permuted by
// XOR with (row % 8): this is exactly TMA's SWIZZLE_128B layout, which the wgmma descriptors read,
// and it puts the row-wise cp.async writes of Q and the P stores in 8 distinct bank groups.
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

// Byte offset of element (row, col) in a swizzled tile whose column chunks are chunk_bytes
// apart (rows x 128 B); col % 8 == 0 for 16-byte accesses.
__device__ __forceinline__ uint32_t swizzled_offset(int row, int col, int chunk_bytes) {
  return static_cast<uint32_t>((col >> 6) * chunk_bytes + row * 128 +
                               ((((col >> 3) & 7) ^ (row & 7)) << 4) + (col & 7) * 2);
}

// The same in a 64-row tile.
__device__ __forceinline__ uint32_t swizzled_offset(int row, int col) {
  return swizzled_offset(row, col, kChunkBytes);
}

}  // namespace flashmla::sm90
