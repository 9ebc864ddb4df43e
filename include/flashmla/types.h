// flashmla: value types shared by the public API.
#pragma once

#include <cstdint>

namespace flashmla {

enum class DType : int32_t { bf16 = 0, fp16 = 1 };

// Which implementation runs the call. Pointers must live where the backend computes:
// device memory for cuda, host memory for cpu.
enum class Backend : int32_t { cuda = 0, cpu = 1 };

// Which schedule runs the 64-row query tiles (more than 32 query rows per kv head) on the GPU:
// one_page (two consumer warpgroups share each page, a producer warpgroup loads) or seesaw (each
// consumer owns every other page and hands its P to the other). automatic is one_page. The seesaw
// pays only where a part (a persistent CTA) has many pages, which the host cannot see: ask for it
// where the requests are long (docs/design.md, "Which schedule runs a wide tile").
// Both give the same results within the SPEC tolerances; the CPU backend ignores it.
enum class WideSchedule : int32_t { automatic = 0, one_page = 1, seesaw = 2 };

// Dimensions fixed by MLA's absorbed decode form (DeepSeek-V2/V3).
inline constexpr int kHeadDimQK = 576;   // 512 latent ("NoPE") channels + 64 RoPE channels
inline constexpr int kHeadDimV = 512;    // V is the first 512 channels of each cache row
inline constexpr int kPageBlockSize = 64;

// One row of tile_scheduler_metadata: int32[kMetadataFields] per SM part.
inline constexpr int kMetadataFields = 8;

const char* dtype_name(DType dtype);
const char* backend_name(Backend backend);
const char* wide_schedule_name(WideSchedule schedule);
// The schedule that wide_schedule_name spells `name` (schedule left as it was and false when none).
bool wide_schedule_from_name(const char* name, WideSchedule& schedule);

}  // namespace flashmla
