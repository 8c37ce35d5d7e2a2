/* frugal native kernels (see kernels.h). Matmuls go to OpenBLAS sgemm with OpenBLAS itself held to one
 * thread; all parallelism is ours (OpenMP over rows, heads or batch), so the two never fight over the
 * cores. Hot loops are compiled for AVX-512, AVX2 and plain x86-64 and picked at load time. */
#define _GNU_SOURCE
#include "kernels.h"
#include "internal.h"
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int g_threads = 1;

/* exp(x) for float, Cephes-style: x = n·ln2 + r, a degree-6 polynomial for e^r, 2^n by exponent bits.
 * Written as plain arithmetic so loops that call it vectorise; max relative error ≈ 2e-7 on [-87, 88]. */
static inline __attribute__((always_inline)) float fexp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest, no SSE4.1 needed */
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  union { float f; int32_t i; } u;
  u.i = ((int32_t)n + 127) << 23;
  return p * u.f;
}
extern void openblas_set_num_threads(int);

void fr_init_threads(int n) {
  g_threads = n < 1 ? 1 : n;
  openblas_set_num_threads(1);
  omp_set_num_threads(g_threads);
}
int fr_num_threads(void) { return g_threads; }

const char *fr_simd_name(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "scalar";
}

/* ---- matmul: C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], row-major ---- */
static void gemm1(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
              alpha, A, lda, B, ldb, beta, C, ldc);
}

/* one row of C (decoding): sgemv over a slice [lo, hi) of C's columns */
static void gemv_cols(int ta, int tb, int lo, int hi, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C) {
  int incx = ta ? lda : 1;
  if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, K, alpha, B + (long)lo * ldb, ldb, A, incx, beta, C + lo, 1);
  else cblas_sgemv(CblasRowMajor, CblasTrans, K, hi - lo, alpha, B + lo, ldb, A, incx, beta, C + lo, 1);
}

void fr_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long sA,
             const float *B, int ldb, long sB, float beta, float *C, int ldc, long sC, int batch) {
  double work = (double)M * N * K * batch;
  int nt = work < 65536.0 ? 1 : g_threads;
  if (M == 1 && batch == 1) {
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      int lo = (int)((long)N * t / n), hi = (int)((long)N * (t + 1) / n);
      if (hi > lo) gemv_cols(ta, tb, lo, hi, K, alpha, A, lda, B, ldb, beta, C);
    }
    return;
  }
  /* a batch that divides among the threads (or is long enough not to care) runs one matmul per thread at a time */
  if (batch >= nt && (batch % nt == 0 || batch >= 4 * nt)) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < batch; b++)
      gemm1(ta, tb, M, N, K, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
    return;
  }
  /* otherwise each matmul in turn, split among the threads: the rows of C (or the columns when C is wide and
   * short); a few blocks of a block-diagonal weight (linearBlocks) would leave a thread idle per round */
  int splitRows = M >= N;
  for (int b = 0; b < batch; b++) {
    const float *Ab = A + b * sA, *Bb = B + b * sB;
    float *Cb = C + b * sC;
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      int total = splitRows ? M : N;
      int lo = (int)((long)total * t / n), hi = (int)((long)total * (t + 1) / n);
      if (hi > lo) {
        if (splitRows) {
          const float *a = ta ? Ab + lo : Ab + (long)lo * lda;
          gemm1(ta, tb, hi - lo, N, K, alpha, a, lda, Bb, ldb, beta, Cb + (long)lo * ldc, ldc);
        } else {
          const float *bb = tb ? Bb + (long)lo * ldb : Bb + lo;
          gemm1(ta, tb, M, hi - lo, K, alpha, Ab, lda, bb, ldb, beta, Cb + lo, ldc);
        }
      }
    }
  }
}

/* ---- elementwise ---- */
CLONES static void add_r(long lo, long hi, const float *a, const float *b, float *out) {
  for (long i = lo; i < hi; i++) out[i] = a[i] + b[i];
}
CLONES static void mul_r(long lo, long hi, const float *a, const float *b, float *out) {
  for (long i = lo; i < hi; i++) out[i] = a[i] * b[i];
}
CLONES static void axpy_r(long lo, long hi, float alpha, const float *x, float *y) {
  for (long i = lo; i < hi; i++) y[i] += alpha * x[i];
}
CLONES static void sumsq_r(long lo, long hi, const float *x, double *part) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long i = lo; i < hi; i++) s += (double)x[i] * x[i];
  part[omp_get_thread_num()] = s;
}
void fr_add(const float *a, const float *b, float *out, long n) { PAR_RANGE(n, 1, add_r, a, b, out); }
void fr_mul(const float *a, const float *b, float *out, long n) { PAR_RANGE(n, 1, mul_r, a, b, out); }
void fr_axpy(float alpha, const float *x, float *y, long n) { PAR_RANGE(n, 1, axpy_r, alpha, x, y); }
double fr_sumsq(const float *x, long n) {
  double part[64] = {0}, s = 0;
  PAR_RANGE(n, 1, sumsq_r, x, part);
  for (int t = 0; t < 64; t++) s += part[t];
  return s;
}

/* ---- embedding ---- */
void fr_embedding_fwd(const float *W, const int32_t *ids, float *out, long N, int C) {
  for (long i = 0; i < N; i++) memcpy(out + i * C, W + (long)ids[i] * C, sizeof(float) * C);
}
CLONES void fr_embedding_bwd(const float *dout, const int32_t *ids, float *dW, long N, int C) {
  for (long i = 0; i < N; i++) {
    float *d = dW + (long)ids[i] * C;
    const float *g = dout + i * C;
    for (int c = 0; c < C; c++) d[c] += g[c];
  }
}

/* ---- RMSNorm: out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) ---- */
CLONES static void rmsnorm_fwd_r(long lo, long hi, const float *x, const float *w, float *out, float *rstd,
                                  int C, float eps) {
  for (long r = lo; r < hi; r++) {
    const float *xr = x + r * C;
    float *o = out + r * C;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) ss += xr[c] * xr[c];
    float s = 1.0f / sqrtf(ss / C + eps);
    rstd[r] = s;
    for (int c = 0; c < C; c++) o[c] = xr[c] * s * w[c];
  }
}
void fr_rmsnorm_fwd(const float *x, const float *w, float *out, float *rstd, long rows, int C, float eps) {
  PAR_RANGE(rows, C, rmsnorm_fwd_r, x, w, out, rstd, C, eps);
}

CLONES static void rmsnorm_bwd_r(long lo, long hi, const float *dout, const float *x, const float *w,
                                  const float *rstd, float *dx, float *part, int C) {
  float *pw = part + (long)omp_get_thread_num() * C;
  for (long r = lo; r < hi; r++) {
    const float *g = dout + r * C, *xr = x + r * C;
    float s = rstd[r], dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < C; c++) dot += g[c] * w[c] * xr[c];
    float k = dot * s * s * s / C;
    float *d = dx + r * C;
    for (int c = 0; c < C; c++) {
      d[c] += g[c] * w[c] * s - xr[c] * k;
      pw[c] += g[c] * xr[c] * s;
    }
  }
}
void fr_rmsnorm_bwd(const float *dout, const float *x, const float *w, const float *rstd, float *dx,
                    float *dw, long rows, int C) {
  float *part = calloc((size_t)g_threads * C, sizeof(float));
  PAR_RANGE(rows, C, rmsnorm_bwd_r, dout, x, w, rstd, dx, part, C);
  for (int t = 0; t < g_threads; t++)
    for (int c = 0; c < C; c++) dw[c] += part[(long)t * C + c];
  free(part);
}

/* ---- RoPE, rotate-half (Llama/Qwen2) layout. inverse=1 rotates by -angle and adds into out: that is
 * the backward, which accumulates like every other backward kernel. ---- */
CLONES static void rope_r(long lo, long hi, const float *x, float *out, const int32_t *pos,
                           const float *cosT, const float *sinT, int H, int D, int inverse) {
  int half = D / 2;
  for (long r = lo; r < hi; r++) {
    const float *cs = cosT + (long)pos[r] * half, *sn = sinT + (long)pos[r] * half;
    for (int h = 0; h < H; h++) {
      const float *xi = x + (r * H + h) * D;
      float *o = out + (r * H + h) * D;
      for (int i = 0; i < half; i++) {
        float c = cs[i], s = inverse ? -sn[i] : sn[i];
        float a = xi[i], b = xi[i + half];
        if (inverse) {
          o[i] += a * c - b * s;
          o[i + half] += b * c + a * s;
        } else {
          o[i] = a * c - b * s;
          o[i + half] = b * c + a * s;
        }
      }
    }
  }
}
void fr_rope(const float *x, float *out, const int32_t *pos, const float *cosT, const float *sinT,
             long rows, int H, int D, int inverse) {
  PAR_RANGE(rows, H * D, rope_r, x, out, pos, cosT, sinT, H, D, inverse);
}

/* ---- causal attention with grouped KV heads; q (B,T,H,D), k/v (B,T,KVH,D), P (B,H,T,T) ----
 * Queries go in blocks of ATT_BQ rows, each against the keys up to its last row only: the blocks above the
 * diagonal are never computed, written or read (about half of P), so P's upper part holds whatever was there. */
#define ATT_BQ 64

/* rows [r0, r0 + m) of a causal softmax over S (row stride ldS, ncol columns): row r keeps columns 0..r;
 * stats (when not NULL) gets each row's max and 1/Σ exp, from which the backward rebuilds the row bit for bit */
CLONES static void causal_softmax_block(float *S, int ldS, int r0, int m, int ncol, float *stats) {
  for (int i = 0; i < m; i++) {
    float *row = S + (long)i * ldS, mx = -INFINITY, sum = 0;
    int last = r0 + i;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j <= last; j++) mx = row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= last; j++) { row[j] = fexp(row[j] - mx); sum += row[j]; }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= last; j++) row[j] *= inv;
    for (int j = last + 1; j < ncol; j++) row[j] = 0;
    if (stats) stats[2 * i] = mx, stats[2 * i + 1] = inv;
  }
}

/* One forward for both forms: P (B,H,T,T) kept whole (stats NULL), or only each row's max and 1/Σ exp, stats
 * (B,H,T,2) (P NULL), with each 64-row block of P in a per-thread scratch. The scores are the same product either way,
 * so the backward can rebuild P bit for bit: one more product per block, and memory that does not grow with T². */
static void attn_fwd_impl(const float *q, const float *k, const float *v, float *out, float *P, float *stats, int B,
                          int T, int H, int KVH, int D, float scale) {
  int rep = H / KVH, qs = H * D, ks = KVH * D;
#pragma omp parallel
  {
    float *scratch = P ? NULL : malloc(sizeof(float) * (size_t)ATT_BQ * T);
#pragma omp for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, h = bh % H, kh = h / rep;
      const float *qb = q + (long)b * T * qs + h * D, *kb = k + (long)b * T * ks + kh * D;
      const float *vb = v + (long)b * T * ks + kh * D;
      float *ob = out + (long)b * T * qs + h * D;
      for (int r0 = 0; r0 < T; r0 += ATT_BQ) {
        int m = T - r0 < ATT_BQ ? T - r0 : ATT_BQ, ncol = r0 + m, ld = P ? T : ncol;
        float *S = P ? P + ((long)bh * T + r0) * T : scratch;
        gemm1(0, 1, m, ncol, D, scale, qb + (long)r0 * qs, qs, kb, ks, 0.0f, S, ld);
        causal_softmax_block(S, ld, r0, m, ncol, stats ? stats + ((long)bh * T + r0) * 2 : NULL);
        gemm1(0, 0, m, D, ncol, 1.0f, S, ld, vb, ks, 0.0f, ob + (long)r0 * qs, qs);
      }
    }
    free(scratch);
  }
}
void fr_attn_fwd(const float *q, const float *k, const float *v, float *out, float *P, int B, int T,
                 int H, int KVH, int D, float scale) {
  attn_fwd_impl(q, k, v, out, P, NULL, B, T, H, KVH, D, scale);
}
void fr_attn_fwd_stats(const float *q, const float *k, const float *v, float *out, float *stats, int B, int T, int H,
                       int KVH, int D, float scale) {
  attn_fwd_impl(q, k, v, out, NULL, stats, B, T, H, KVH, D, scale);
}

/* dS = P * (dP - rowsum(P * dP)) * scale on rows [r0, r0 + m) of a block: P with row stride ldP, dS packed
 * (row stride ncol) */
CLONES static void softmax_bwd_block(const float *Pm, int ldP, float *dS, int r0, int m, int ncol, float scale) {
  for (int i = 0; i < m; i++) {
    const float *p = Pm + (long)i * ldP;
    float *d = dS + (long)i * ncol, dot = 0;
    int last = r0 + i;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j <= last; j++) dot += p[j] * d[j];
    for (int j = 0; j <= last; j++) d[j] = p[j] * (d[j] - dot) * scale;
    for (int j = last + 1; j < ncol; j++) d[j] = 0;
  }
}

/* rows [r0, r0 + m) of P rebuilt in place from their scores S (row stride ncol), max and 1/Σ exp: the forward's
 * own arithmetic */
CLONES static void causal_rebuild_block(float *S, const float *stats, int r0, int m, int ncol) {
  for (int i = 0; i < m; i++) {
    float *row = S + (long)i * ncol, mx = stats[2 * i], inv = stats[2 * i + 1];
    int last = r0 + i;
#pragma omp simd
    for (int j = 0; j <= last; j++) row[j] = fexp(row[j] - mx) * inv;
    for (int j = last + 1; j < ncol; j++) row[j] = 0;
  }
}

/* The backward of either form: P read where it was kept, else each block rebuilt from the scores and stats. */
static void attn_bwd_impl(const float *dout, const float *q, const float *k, const float *v, const float *P,
                          const float *stats, float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int D,
                          float scale) {
  int rep = H / KVH, qs = H * D, ks = KVH * D;
  /* each task owns one (b, kv-head), so the dk/dv it accumulates are written by no other thread */
#pragma omp parallel
  {
    size_t block = sizeof(float) * (size_t)ATT_BQ * T;
    float *dS = malloc(block), *scratch = P ? NULL : malloc(block);
#pragma omp for schedule(static)
    for (int bk = 0; bk < B * KVH; bk++) {
      int b = bk / KVH, kh = bk % KVH;
      const float *kb = k + (long)b * T * ks + kh * D, *vb = v + (long)b * T * ks + kh * D;
      float *dkb = dk + (long)b * T * ks + kh * D, *dvb = dv + (long)b * T * ks + kh * D;
      for (int h = kh * rep; h < (kh + 1) * rep; h++) {
        long bh = (long)b * H + h;
        const float *qb = q + (long)b * T * qs + h * D, *dob = dout + (long)b * T * qs + h * D;
        float *dqb = dq + (long)b * T * qs + h * D;
        for (int r0 = 0; r0 < T; r0 += ATT_BQ) {
          int m = T - r0 < ATT_BQ ? T - r0 : ATT_BQ, ncol = r0 + m, ld = P ? T : ncol;
          const float *qr = qb + (long)r0 * qs, *dor = dob + (long)r0 * qs, *Pm = P ? P + (bh * T + r0) * T : scratch;
          if (!P) {
            gemm1(0, 1, m, ncol, D, scale, qr, qs, kb, ks, 0.0f, scratch, ncol); /* the forward's scores */
            causal_rebuild_block(scratch, stats + (bh * T + r0) * 2, r0, m, ncol);
          }
          gemm1(1, 0, ncol, D, m, 1.0f, Pm, ld, dor, qs, 1.0f, dvb, ks);      /* dV += P^T dO */
          gemm1(0, 1, m, ncol, D, 1.0f, dor, qs, vb, ks, 0.0f, dS, ncol);     /* dP = dO V^T */
          softmax_bwd_block(Pm, ld, dS, r0, m, ncol, scale);                  /* dS */
          gemm1(0, 0, m, D, ncol, 1.0f, dS, ncol, kb, ks, 1.0f, dqb + (long)r0 * qs, qs); /* dQ += dS K */
          gemm1(1, 0, ncol, D, m, 1.0f, dS, ncol, qr, qs, 1.0f, dkb, ks);     /* dK += dS^T Q */
        }
      }
    }
    free(dS);
    free(scratch);
  }
}
void fr_attn_bwd(const float *dout, const float *q, const float *k, const float *v, const float *P,
                 float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int D, float scale) {
  attn_bwd_impl(dout, q, k, v, P, NULL, dq, dk, dv, B, T, H, KVH, D, scale);
}
void fr_attn_bwd_stats(const float *dout, const float *q, const float *k, const float *v, const float *stats,
                       float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int D, float scale) {
  attn_bwd_impl(dout, q, k, v, NULL, stats, dq, dk, dv, B, T, H, KVH, D, scale);
}

/* the cache holds float32, or bfloat16 bits (kvHalf): half the bytes per position. One task is one query head of
 * one query. For head sizes that are multiples of 8 up to ATT_DMAX the body is inlined (with the size fixed for 32,
 * 64 and 128): each key's dot product and the output row are sums of 8-wide vectors held in registers, where
 * an omp simd reduction per key went through the stack one lane at a time. */
typedef float vf8 __attribute__((vector_size(32)));
typedef uint16_t vh8 __attribute__((vector_size(16)));
typedef uint32_t vu8 __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) vf8 load8(const void *p, long off, int kvHalf) {
  vf8 x;
  if (kvHalf) {
    vh8 h;
    memcpy(&h, (const uint16_t *)p + off, sizeof h);
    vu8 u = __builtin_convertvector(h, vu8) << 16;
    memcpy(&x, &u, sizeof x);
  } else
    memcpy(&x, (const float *)p + off, sizeof x);
  return x;
}
static inline __attribute__((always_inline)) void attn_cached_body(
    long lo, long hi, const float *q, const void *kc, const void *vc, int kvHalf, float *out, const int32_t *pos,
    const int32_t *slot, int Tn, int H, int KVH, const int D, int Tmax, float scale, float *s) {
  int rep = H / KVH, ks = KVH * D, nv = D / 8;
  for (long task = lo; task < hi; task++) {
    int h = (int)(task % H), t = (int)((task / H) % Tn), b = (int)(task / ((long)H * Tn));
    int kh = h / rep, n = pos[b] + t + 1;
    const float *qi = q + (((long)b * Tn + t) * H + h) * D;
    long base = (long)slot[b] * Tmax * ks + kh * D;
    vf8 qv[ATT_DMAX / 8], acc[ATT_DMAX / 8];
    for (int i = 0; i < nv; i++) memcpy(&qv[i], qi + 8 * i, sizeof(vf8));
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
      long off = base + (long)j * ks;
      vf8 d = qv[0] * load8(kc, off, kvHalf);
      for (int i = 1; i < nv; i++) d += qv[i] * load8(kc, off + 8 * i, kvHalf);
      float e = ((d[0] + d[4]) + (d[2] + d[6])) + ((d[1] + d[5]) + (d[3] + d[7]));
      s[j] = e * scale;
      mx = s[j] > mx ? s[j] : mx;
    }
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) { s[j] = fexp(s[j] - mx); sum += s[j]; }
    float *o = out + (((long)b * Tn + t) * H + h) * D, inv = 1.0f / sum;
    for (int i = 0; i < nv; i++) acc[i] = (vf8){0};
    for (int j = 0; j < n; j++) {
      long off = base + (long)j * ks;
      float p = s[j] * inv;
      for (int i = 0; i < nv; i++) acc[i] += p * load8(vc, off + 8 * i, kvHalf);
    }
    for (int i = 0; i < nv; i++) memcpy(o + 8 * i, &acc[i], sizeof(vf8));
  }
}
#define ATTN_CACHED_R(name, DV)                                                                                 \
  CLONES static void name(long lo, long hi, const float *q, const void *kc, const void *vc, int kvHalf,        \
                          float *out, const int32_t *pos, const int32_t *slot, int Tn, int H, int KVH, int D,   \
                          int Tmax, float scale) {                                                              \
    float *s = malloc(sizeof(float) * (size_t)Tmax);                                                            \
    attn_cached_body(lo, hi, q, kc, vc, kvHalf, out, pos, slot, Tn, H, KVH, DV, Tmax, scale, s);                \
    free(s);                                                                                                    \
  }
ATTN_CACHED_R(attn_cached_r32, 32)
ATTN_CACHED_R(attn_cached_r64, 64)
ATTN_CACHED_R(attn_cached_r128, 128)
ATTN_CACHED_R(attn_cached_r, D)

/* any head size: one query head at a time, scalar sums (the head sizes the vector body does not take) */
CLONES static void attn_cached_any(long lo, long hi, const float *q, const void *kc, const void *vc, int kvHalf,
                                    float *out, const int32_t *pos, const int32_t *slot, int Tn, int H,
                                    int KVH, int D, int Tmax, float scale) {
  int rep = H / KVH, ks = KVH * D;
  float *s = malloc(sizeof(float) * (size_t)Tmax);
  for (long task = lo; task < hi; task++) {
    int h = (int)(task % H), t = (int)((task / H) % Tn), b = (int)(task / ((long)H * Tn));
    int kh = h / rep, n = pos[b] + t + 1;
    const float *qi = q + (((long)b * Tn + t) * H + h) * D;
    long base = (long)slot[b] * Tmax * ks + kh * D;
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
      long off = base + (long)j * ks;
      float d = 0;
      if (kvHalf) {
        const uint16_t *kj = (const uint16_t *)kc + off;
#pragma omp simd reduction(+ : d)
        for (int c = 0; c < D; c++) d += qi[c] * bf16_f32(kj[c]);
      } else {
        const float *kj = (const float *)kc + off;
#pragma omp simd reduction(+ : d)
        for (int c = 0; c < D; c++) d += qi[c] * kj[c];
      }
      s[j] = d * scale;
      mx = s[j] > mx ? s[j] : mx;
    }
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) { s[j] = fexp(s[j] - mx); sum += s[j]; }
    float *o = out + (((long)b * Tn + t) * H + h) * D, inv = 1.0f / sum;
    for (int c = 0; c < D; c++) o[c] = 0;
    for (int j = 0; j < n; j++) {
      long off = base + (long)j * ks;
      float p = s[j] * inv;
      if (kvHalf) {
        const uint16_t *vj = (const uint16_t *)vc + off;
#pragma omp simd
        for (int c = 0; c < D; c++) o[c] += p * bf16_f32(vj[c]);
      } else {
        const float *vj = (const float *)vc + off;
        for (int c = 0; c < D; c++) o[c] += p * vj[c];
      }
    }
  }
  free(s);
}

/* Attention of Tn new queries per sequence against a KV cache (slots, Tmax, KVH, D); query t of sequence
 * b reads cache slot slot[b], sits at position pos[b] + t and sees positions 0..pos[b]+t. Used for
 * prefill and decoding; the slot map lets a server decode any subset of its slots in one call. */
void fr_attn_cached(const float *q, const void *kc, const void *vc, int kvHalf, float *out, const int32_t *pos,
                    const int32_t *slot, int B, int Tn, int H, int KVH, int D, int Tmax, float scale) {
  long tasks = (long)B * Tn * H, work = 0;
  for (int b = 0; b < B; b++) work += pos[b] + Tn;
  __typeof__(attn_cached_any) *fn =
      D == 32    ? attn_cached_r32
      : D == 64  ? attn_cached_r64
      : D == 128 ? attn_cached_r128
      : D % 8 == 0 && D <= ATT_DMAX ? attn_cached_r
                                    : attn_cached_any;
  PAR_RANGE(tasks, (work / B + 1) * D * 4, fn, q, kc, vc, kvHalf, out, pos, slot, Tn, H, KVH, D, Tmax, scale);
}

/* ---- one decoder block for one new token per sequence (see kernels.h); returns -1 when out of memory */
static void add_bias_rows(float *y, const float *bias, int N, int n) {
  if (bias)
    for (int r = 0; r < N; r++)
      for (int i = 0; i < n; i++) y[(long)r * n + i] += bias[i];
}
/* y (N, out) = beta*y + x (N, in) · Wᵀ from the float32 or the bfloat16 copy of a block's weight; with G > 1
 * groups, over W's G diagonal blocks of outPer × inPer only (float32; outputs past G·outPer are 0) */
static void blk_lin(int N, int out, int in, const float *x, const float *w, const uint16_t *h, float beta,
                    float *y, int G, int outPer, int inPer) {
  if (G > 1 && !h) {
    if (beta == 0 && G * outPer < out)
      for (long r = 0; r < N; r++) memset(y + r * out + (long)G * outPer, 0, sizeof(float) * (out - (long)G * outPer));
    fr_gemm(0, 1, N, outPer, inPer, 1, x, in, inPer, w, in, (long)outPer * in + inPer, beta, y, out, outPer, G);
  } else if (h) fr_linear_bf16(x, h, y, N, in, out, beta);
  else fr_gemm(0, 1, N, out, in, 1, x, in, 0, w, in, 0, beta, y, out, 0, 1);
}

int fr_decode_block(const FrBlock *w, float *x, int N, const int32_t *pos, const int32_t *slot,
                    const float *cosT, const float *sinT, void *kc, void *vc, int kvHalf, int Tmax) {
  int C = w->C, H = w->H, KVH = w->KVH, D = w->D, F = w->F, qd = H * D, kd = KVH * D;
  float *buf = malloc(sizeof(float) * ((size_t)N * (C + 3 * (size_t)qd + 2 * (size_t)kd + 2 * (size_t)F) + N));
  if (!buf) return -1;
  float *h = buf, *q = h + (long)N * C, *qr = q + (long)N * qd, *k = qr + (long)N * qd, *v = k + (long)N * kd;
  float *att = v + (long)N * kd, *g = att + (long)N * qd, *u = g + (long)N * F, *rstd = u + (long)N * F;
  fr_rmsnorm_fwd(x, w->ln1, h, rstd, N, C, w->eps);
  int G = w->G, gq = w->gH * D, gk = w->gKVH * D;
  blk_lin(N, qd, C, h, w->wq, w->hq, 0, q, G, gq, w->gC);
  blk_lin(N, kd, C, h, w->wk, w->hk, 0, k, G, gk, w->gC);
  blk_lin(N, kd, C, h, w->wv, w->hv, 0, v, G, gk, w->gC);
  add_bias_rows(q, w->bq, N, qd); add_bias_rows(k, w->bk, N, kd); add_bias_rows(v, w->bv, N, kd);
  fr_rope(q, qr, pos, cosT, sinT, N, H, D, 0);
  fr_rope(k, att, pos, cosT, sinT, N, KVH, D, 0); /* att is free until the attention: rotated keys */
  for (int b = 0; b < N; b++) {
    long dst = ((long)slot[b] * Tmax + pos[b]) * kd;
    if (kvHalf)
      for (int c = 0; c < kd; c++) {
        ((uint16_t *)kc)[dst + c] = f32_bf16(att[(long)b * kd + c]);
        ((uint16_t *)vc)[dst + c] = f32_bf16(v[(long)b * kd + c]);
      }
    else {
      memcpy((float *)kc + dst, att + (long)b * kd, sizeof(float) * kd);
      memcpy((float *)vc + dst, v + (long)b * kd, sizeof(float) * kd);
    }
  }
  fr_attn_cached(qr, kc, vc, kvHalf, att, pos, slot, N, 1, H, KVH, D, Tmax, (float)(1.0 / sqrt((double)D)));
  blk_lin(N, C, qd, att, w->wo, w->ho, 1, x, G, w->gC, gq); /* x += att Wo^T */
  fr_rmsnorm_fwd(x, w->ln2, h, rstd, N, C, w->eps);
  blk_lin(N, F, C, h, w->wg, w->hg, 0, g, G, w->gF, w->gC);
  blk_lin(N, F, C, h, w->wu, w->hu, 0, u, G, w->gF, w->gC);
  fr_swiglu_fwd(g, u, g, (long)N * F);
  blk_lin(N, C, F, g, w->wd, w->hd, 1, x, G, w->gC, w->gF); /* x += mlp Wd^T */
  free(buf);
  return 0;
}

/* ---- SwiGLU: out = silu(g) * u ---- */
CLONES static void swiglu_fwd_r(long lo, long hi, const float *g, const float *u, float *out) {
  for (long i = lo; i < hi; i++) {
    float s = 1.0f / (1.0f + fexp(-g[i]));
    out[i] = g[i] * s * u[i];
  }
}
CLONES static void swiglu_bwd_r(long lo, long hi, const float *dout, const float *g, const float *u,
                                 float *dg, float *du) {
  for (long i = lo; i < hi; i++) {
    float s = 1.0f / (1.0f + fexp(-g[i])), silu = g[i] * s;
    dg[i] += dout[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    du[i] += dout[i] * silu;
  }
}
void fr_swiglu_fwd(const float *g, const float *u, float *out, long n) { PAR_RANGE(n, 1, swiglu_fwd_r, g, u, out); }
void fr_swiglu_bwd(const float *dout, const float *g, const float *u, float *dg, float *du, long n) {
  PAR_RANGE(n, 1, swiglu_bwd_r, dout, g, u, dg, du);
}

/* ---- stable log-softmax gathered at target ids: logp[n] = logits[n,tgt] - logsumexp(logits[n]) ---- */
CLONES static void lsm_r(long lo, long hi, const float *logits, const int32_t *tgt, float *logp,
                          float *lse, int V) {
  for (long n = lo; n < hi; n++) {
    const float *l = logits + n * V;
    float mx = -INFINITY, sum = 0;
#pragma omp simd reduction(max : mx)
    for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
#pragma omp simd reduction(+ : sum)
    for (int v = 0; v < V; v++) sum += fexp(l[v] - mx);
    lse[n] = mx + logf(sum);
    logp[n] = l[tgt[n]] - lse[n];
  }
}
void fr_logsoftmax_gather(const float *logits, const int32_t *tgt, float *logp, float *lse, long N, int V) {
  PAR_RANGE(N, V, lsm_r, logits, tgt, logp, lse, V);
}
CLONES static void lsm_bwd_r(long lo, long hi, const float *logits, const float *lse, const int32_t *tgt,
                              const float *dlogp, float *dlogits, int V) {
  for (long n = lo; n < hi; n++) {
    const float *l = logits + n * V;
    float *d = dlogits + n * V, g = dlogp[n], m = lse[n];
    for (int v = 0; v < V; v++) d[v] += -g * fexp(l[v] - m);
    d[tgt[n]] += g;
  }
}
void fr_logsoftmax_gather_bwd(const float *logits, const float *lse, const int32_t *tgt,
                              const float *dlogp, float *dlogits, long N, int V) {
  PAR_RANGE(N, V, lsm_bwd_r, logits, lse, tgt, dlogp, dlogits, V);
}

/* ---- AdamW (decoupled weight decay); gscale multiplies the gradient (global-norm clipping) ---- */
CLONES static void adamw_r(long lo, long hi, float *p, const float *g, float *m, float *v, float lr,
                            float b1, float b2, float eps, float wd, float bc1, float bc2, float gscale) {
  for (long i = lo; i < hi; i++) {
    float gi = g[i] * gscale;
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    float mh = m[i] / bc1, vh = v[i] / bc2;
    p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
  }
}
void fr_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2,
              float eps, float wd, float bc1, float bc2, float gscale) {
  PAR_RANGE(n, 1, adamw_r, p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2, gscale);
}
