// Thin wrappers over the plain PTX the SM90 kernels use (Ampere-style async copies, shared-memory
// stores) and the per-dtype packing of P; the Hopper pipeline primitives are in async_ptx.cuh.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace flashmla::sm90 {

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// The GPU's global nanosecond timer (comparable across SMs).
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// x as lane 0 holds it, for a value every lane of the warp already holds: the compiler then knows it
// is warp-uniform and keeps what is computed from it in uniform registers. wgmma takes its
// descriptors from uniform registers; built from a value it cannot prove uniform (threadIdx, or a
// counter of a loop whose bounds were loaded from memory), each descriptor is computed in regular
// registers and moved over with R2UR, ~10 instructions per MMA (docs/perf-log.md, entry 91).
__device__ __forceinline__ uint32_t warp_uniform(uint32_t x) { return __shfl_sync(0xffffffffu, x, 0); }
__device__ __forceinline__ int warp_uniform(int x) { return __shfl_sync(0xffffffffu, x, 0); }

// 16-byte global->shared copy that bypasses L1. src_bytes = 0 zero-fills the destination
// without touching global memory, which is how masked cache rows stay out of the tile.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// 2^x with subnormal results flushed to zero: softmax weights below 2^-126 of the row maximum
// change no sum, and the plain exp2f adds a rescaling for them on every call.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t value) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(value) : "memory");
}

__device__ __forceinline__ uint32_t ld_shared_b32(uint32_t addr) {
  uint32_t value;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(value) : "r"(addr) : "memory");
  return value;
}

__device__ __forceinline__ void st_shared_f32x4(uint32_t addr, float a, float b, float c, float d) {
  asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "f"(a), "f"(b), "f"(c), "f"(d) : "memory");
}

__device__ __forceinline__ float4 ld_shared_f32x4(uint32_t addr) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}

// Four 8 x 8 matrices of 16-bit pairs stored transposed. Register i of lane l holds row l / 4,
// columns 2 * (l % 4) and +1 (low half first) of matrix i; lane l gives the address of memory
// row l % 8 of matrix l / 8, which receives column l % 8 of that matrix (8 elements, 16 bytes).
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0),
               "r"(r1), "r"(r2), "r"(r3)
               : "memory");
}

// Two such matrices: lanes 0-15 give the addresses (matrix l / 8), registers r0, r1.
__device__ __forceinline__ void stmatrix_x2_trans(uint32_t addr, uint32_t r0, uint32_t r1) {
  asm volatile("stmatrix.sync.aligned.m8n8.x2.trans.shared.b16 [%0], {%1, %2};\n" ::"r"(addr), "r"(r0), "r"(r1)
               : "memory");
}

// Per-dtype pieces: packing two floats into the 16-bit pair layout P and the output stores use
// (low half = first), and whether P needs a hi + lo split to meet SPEC's tolerance.
template <typename T>
struct HalfOps;

template <>
struct HalfOps<__nv_bfloat16> {
  // bf16 keeps 8 significant bits: rounding the softmax weights P once to bf16 gives errors of
  // several output ulps on short rows (measured on H200: up to 4% of an element), outside SPEC
  // section 1's tolerance. P is therefore fed to the MMA as hi + lo, two bf16 terms (the wide
  // kernel drops lo on pages that carry little of a row's weight: decode_wgmma_kernel.cuh).
  static constexpr bool kSplitP = true;
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
  // The two values of a packed pair, exactly (a bf16 is the top half of a float).
  static __device__ __forceinline__ float2 unpack(uint32_t w) {
    return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  }
};

template <>
struct HalfOps<__half> {
  // fp16 keeps 11 significant bits: one rounding of P is within tolerance with room to spare.
  static constexpr bool kSplitP = false;
  static __device__ __forceinline__ float2 unpack(uint32_t w) {
    return __half22float2(*reinterpret_cast<const __half2*>(&w));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

}  // namespace flashmla::sm90
