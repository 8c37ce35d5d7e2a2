/* What the native kernel files share and nothing else includes: the SIMD cloning attribute, the parallel-range
 * macro with its thread count, and bfloat16 <-> float32 conversion. */
#ifndef FRUGAL_INTERNAL_H
#define FRUGAL_INTERNAL_H
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define PAR_MIN 16384 /* elements below which a loop stays on one thread */

/* OpenMP outlines a parallel loop's body into a function that target_clones does not reach, so every
 * parallel kernel is a cloned *range* function called once per thread with its share [lo, hi). */
#define PAR_RANGE(n, work, fn, ...)                                            \
  do {                                                                         \
    long n_ = (n);                                                             \
    int nt_ = n_ * (long)(work) > PAR_MIN ? g_threads : 1;                     \
    _Pragma("omp parallel num_threads(nt_)") {                                 \
      int t_ = omp_get_thread_num(), k_ = omp_get_num_threads();              \
      fn(n_ * t_ / k_, n_ * (t_ + 1) / k_, __VA_ARGS__);                       \
    }                                                                          \
  } while (0)

extern int g_threads;

static inline float bf16_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
/* float32 → bfloat16 bits, rounded to nearest even (NaN stays NaN), as half.ts's bf16Bits */
static inline uint16_t f32_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu)) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#endif
