/* The bfloat16-weight matrix kernels (see kernels.h): y = x·Wᵀ for decoding and prefill, and dx = dy·W, the input
 * gradient of a frozen bfloat16 base under LoRA. The weights stay 16-bit; products accumulate in float32. */
#define _GNU_SOURCE
#include "kernels.h"
#include "internal.h"
#include <immintrin.h>
#include <stdlib.h>

/* ---- linear with bfloat16 weights: a bf16 value is the top half of a float32 (bf16_f32 in internal.h) ---- */
/* y[n, o] for n < N and o in [lo, hi): four weight rows are widened into tmp at a time, then each block of
 * four rows of x meets them in a 4 × 4 tile of dot products (16 accumulators), so every loaded value is used four
 * times; the leftover rows and columns go one dot product at a time */
static inline void lin16_put(float *y, long n, int out, long o, float acc, float beta) {
  float *yo = y + n * (long)out + o;
  *yo = beta == 0 ? acc : beta * *yo + acc;
}
/* one row of x (decoding a single sequence): the weights are widened in registers (bf16 → f32 is a 16-bit shift)
 * inside the dot product; explicit AVX-512 / AVX2 code, as the compiler's vectorisation of the shift was slower */
__attribute__((target("avx512f"))) static void lin16_row_avx512(long lo, long hi, const float *x, const uint16_t *W,
                                                                float *y, int in, int out, float beta) {
  for (long o = lo; o < hi; o++) {
    const uint16_t *w = W + o * (long)in;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= in; i += 32) {
      __m512i h0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + i)));
      __m512i h1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + i + 16)));
      a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h0, 16)), _mm512_loadu_ps(x + i), a0);
      a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h1, 16)), _mm512_loadu_ps(x + i + 16), a1);
    }
    float acc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < in; i++) acc += x[i] * bf16_f32(w[i]);
    lin16_put(y, 0, out, o, acc, beta);
  }
}
__attribute__((target("avx2,fma"))) static void lin16_row_avx2(long lo, long hi, const float *x, const uint16_t *W,
                                                               float *y, int in, int out, float beta) {
  for (long o = lo; o < hi; o++) {
    const uint16_t *w = W + o * (long)in;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= in; i += 16) {
      __m256i h0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i)));
      __m256i h1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i + 8)));
      a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h0, 16)), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h1, 16)), _mm256_loadu_ps(x + i + 8), a1);
    }
    __m256 s8 = _mm256_add_ps(a0, a1);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s4 = _mm_hadd_ps(s4, s4);
    s4 = _mm_hadd_ps(s4, s4);
    float acc = _mm_cvtss_f32(s4);
    for (; i < in; i++) acc += x[i] * bf16_f32(w[i]);
    lin16_put(y, 0, out, o, acc, beta);
  }
}
static void lin16_row_plain(long lo, long hi, const float *x, const uint16_t *W, float *y, int in, int out,
                            float beta) {
  for (long o = lo; o < hi; o++) {
    const uint16_t *w = W + o * (long)in;
    float acc = 0;
    for (int i = 0; i < in; i++) acc += x[i] * bf16_f32(w[i]);
    lin16_put(y, 0, out, o, acc, beta);
  }
}
static void lin16_row_r(long lo, long hi, const float *x, const uint16_t *W, float *y, int in, int out, float beta) {
  static int isa = -1;
  if (isa < 0) isa = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  if (isa == 2) lin16_row_avx512(lo, hi, x, W, y, in, out, beta);
  else if (isa == 1) lin16_row_avx2(lo, hi, x, W, y, in, out, beta);
  else lin16_row_plain(lo, hi, x, W, y, in, out, beta);
}
CLONES static void lin16_r(long lo, long hi, const float *x, const uint16_t *W, float *y, long N, int in,
                           int out, float beta) {
  float *tmp = malloc(sizeof(float) * 4 * (size_t)in);
  if (!tmp) return;
  long o = lo;
  for (; o + 4 <= hi; o += 4) {
    const uint16_t *w = W + o * (long)in;
#pragma omp simd
    for (long i = 0; i < 4L * in; i++) tmp[i] = bf16_f32(w[i]);
    const float *t0 = tmp, *t1 = tmp + in, *t2 = t1 + in, *t3 = t2 + in;
    long n = 0;
    for (; n + 4 <= N; n += 4) {
      const float *x0 = x + n * (long)in, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;
      float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
#pragma omp simd reduction(+ : a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)
      for (int i = 0; i < in; i++) {
        float v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i], u0 = t0[i], u1 = t1[i], u2 = t2[i], u3 = t3[i];
        a00 += v0 * u0; a01 += v0 * u1; a02 += v0 * u2; a03 += v0 * u3;
        a10 += v1 * u0; a11 += v1 * u1; a12 += v1 * u2; a13 += v1 * u3;
        a20 += v2 * u0; a21 += v2 * u1; a22 += v2 * u2; a23 += v2 * u3;
        a30 += v3 * u0; a31 += v3 * u1; a32 += v3 * u2; a33 += v3 * u3;
      }
      float acc[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) lin16_put(y, n + r, out, o + c, acc[r][c], beta);
    }
    for (; n < N; n++) {
      const float *xn = x + n * (long)in;
      float b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : b0, b1, b2, b3)
      for (int i = 0; i < in; i++) {
        b0 += xn[i] * t0[i]; b1 += xn[i] * t1[i]; b2 += xn[i] * t2[i]; b3 += xn[i] * t3[i];
      }
      lin16_put(y, n, out, o, b0, beta); lin16_put(y, n, out, o + 1, b1, beta);
      lin16_put(y, n, out, o + 2, b2, beta); lin16_put(y, n, out, o + 3, b3, beta);
    }
  }
  for (; o < hi; o++) {
    const uint16_t *w = W + o * (long)in;
#pragma omp simd
    for (int i = 0; i < in; i++) tmp[i] = bf16_f32(w[i]);
    for (long n = 0; n < N; n++) {
      const float *xn = x + n * (long)in;
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int i = 0; i < in; i++) acc += xn[i] * tmp[i];
      lin16_put(y, n, out, o, acc, beta);
    }
  }
  free(tmp);
}
CLONES static void widen16_r(long lo, long hi, const uint16_t *h, float *f) {
  for (long i = lo; i < hi; i++) f[i] = bf16_f32(h[i]);
}
/* up to LIN16_ROWS rows: the weights are read once; more (a prefill): widen them and use sgemm */
#define LIN16_ROWS 16
void fr_linear_bf16(const float *x, const uint16_t *W, float *y, long N, int in, int out, float beta) {
  if (N > LIN16_ROWS) {
    float *Wf = malloc(sizeof(float) * (size_t)out * in);
    if (Wf) {
      PAR_RANGE((long)out * in, 1, widen16_r, W, Wf);
      fr_gemm(0, 1, (int)N, out, in, 1, x, in, 0, Wf, in, 0, beta, y, out, 0, 1);
      free(Wf);
      return;
    }
  }
  if (N == 1) PAR_RANGE(out, (long)in, lin16_row_r, x, W, y, in, out, beta);
  else PAR_RANGE(out, (long)in * N, lin16_r, x, W, y, N, in, out, beta);
}

/* dx (N, in) = beta*dx + dy (N, out) · W (out, in) with W in bfloat16: the input gradient of a frozen bf16 linear.
 * W is widened once per call (a transient float32 copy of one matrix) and multiplied by sgemm. */
int fr_matmul_bf16(const float *dy, const uint16_t *W, float *dx, long N, int in, int out, float beta) {
  float *Wf = malloc(sizeof(float) * (size_t)out * in);
  if (!Wf) return -1;
  PAR_RANGE((long)out * in, 1, widen16_r, W, Wf);
  fr_gemm(0, 0, (int)N, in, out, 1, dy, out, 0, Wf, in, 0, beta, dx, in, 0, 1);
  free(Wf);
  return 0;
}

