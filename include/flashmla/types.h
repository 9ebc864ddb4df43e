// flashmla: value types shared by the public API.
#pragma once

#include <cstdint>

namespace flashmla {

enum class DType : int32_t { bf16 = 0, fp16 = 1 };

// Which implementation runs the call. Pointers must live where the backend computes:
// device memory for cuda, host memory for cpu.
enum class Backend : int32_t { cuda = 0, cpu = 1 };

// Dimensions fixed by MLA's absorbed decode form (DeepSeek-V2/V3).
inline constexpr int kHeadDimQK = 576;   // 512 latent ("NoPE") channels + 64 RoPE channels
inline constexpr int kHeadDimV = 512;    // V is the first 512 channels of each cache row
inline constexpr int kPageBlockSize = 64;

// One row of tile_scheduler_metadata: int32[kMetadataFields] per SM part.
inline constexpr int kMetadataFields = 8;

const char* dtype_name(DType dtype);
const char* backend_name(Backend backend);

}  // namespace flashmla
