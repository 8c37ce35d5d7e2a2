/* frugal native kernels: the compute behind src/engine/kernels.ts, in C with OpenBLAS and OpenMP.
 * Pure functions over raw float pointers; they do no argument checking (addon.c checks every bound
 * before calling) and know nothing about tensors, tapes or models. Shapes: B batch, T time,
 * H heads, KVH key/value heads, D head dim, C channels, V vocab.
 * Memory rule for kernels: forward kernels overwrite their outputs; backward kernels ADD into the
 * gradient buffers they are given (so gradients accumulate across uses and micro-batches). */
#ifndef FRUGAL_KERNELS_H
#define FRUGAL_KERNELS_H
#include <stdint.h>

void fr_init_threads(int n);
int fr_num_threads(void);
const char *fr_simd_name(void);

void fr_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long sA,
             const float *B, int ldb, long sB, float beta, float *C, int ldc, long sC, int batch);
void fr_add(const float *a, const float *b, float *out, long n);
void fr_mul(const float *a, const float *b, float *out, long n);
void fr_axpy(float alpha, const float *x, float *y, long n);
double fr_sumsq(const float *x, long n);
void fr_embedding_fwd(const float *W, const int32_t *ids, float *out, long N, int C);
void fr_embedding_bwd(const float *dout, const int32_t *ids, float *dW, long N, int C);
void fr_rmsnorm_fwd(const float *x, const float *w, float *out, float *rstd, long rows, int C, float eps);
void fr_rmsnorm_bwd(const float *dout, const float *x, const float *w, const float *rstd, float *dx,
                    float *dw, long rows, int C);
void fr_rope(const float *x, float *out, const int32_t *pos, const float *cosT, const float *sinT,
             long rows, int H, int D, int inverse);
void fr_attn_fwd(const float *q, const float *k, const float *v, float *out, float *P, int B, int T,
                 int H, int KVH, int D, float scale);
void fr_attn_bwd(const float *dout, const float *q, const float *k, const float *v, const float *P,
                 float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int D, float scale);
/* the same with each query row's max and 1/Σ exp, stats (B,H,T,2), kept instead of P; the backward rebuilds P */
void fr_attn_fwd_stats(const float *q, const float *k, const float *v, float *out, float *stats, int B, int T, int H,
                       int KVH, int D, float scale);
void fr_attn_bwd_stats(const float *dout, const float *q, const float *k, const float *v, const float *stats,
                       float *dq, float *dk, float *dv, int B, int T, int H, int KVH, int D, float scale);
/* kc, vc: float32, or bfloat16 bits when kvHalf */
/* the largest head size cached attention vectorises (larger ones take the scalar path) */
#define ATT_DMAX 256
void fr_attn_cached(const float *q, const void *kc, const void *vc, int kvHalf, float *out, const int32_t *pos,
                    const int32_t *slot, int B, int Tn, int H, int KVH, int D, int Tmax, float scale);
/* One decoder block for N sequences decoding one token each (row b of x sits at pos[b] in cache slot
 * slot[b]): x += attn(rmsnorm(x)); x += mlp(rmsnorm(x)), updating x in place and writing the new keys
 * (after RoPE) and values into the cache. Biases may be NULL. The same steps as the op-by-op path, in
 * one call, so decoding pays one N-API crossing per layer instead of fourteen. */
typedef struct {
  const float *ln1, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *ln2, *wg, *wu, *wd;
  /* the seven projections in bfloat16 instead (then the float pointers are unused), or NULL */
  const uint16_t *hq, *hk, *hv, *ho, *hg, *hu, *hd;
  int C, H, KVH, D, F;
  float eps;
  /* a merged ensemble (G > 1): each projection reads its G diagonal blocks only, one member's gC dims, gH heads,
   * gKVH key/value heads and gF MLP units each; outputs past G members' are 0. G = 1: dense */
  int G, gC, gH, gKVH, gF;
} FrBlock;
int fr_decode_block(const FrBlock *w, float *x, int N, const int32_t *pos, const int32_t *slot,
                    const float *cosT, const float *sinT, void *kc, void *vc, int kvHalf, int Tmax);
/* y[n, o] = beta * y[n, o] + sum_i x[n, i] * W[o, i] with W (out, in) in bfloat16: each weight is read once
 * for all N rows, so decoding streams half the bytes of float32 weights. */
void fr_linear_bf16(const float *x, const uint16_t *W, float *y, long N, int in, int out, float beta);
/* dx[n, i] = beta * dx[n, i] + sum_o dy[n, o] * W[o, i], W (out, in) in bfloat16; -1 when out of memory */
int fr_matmul_bf16(const float *dy, const uint16_t *W, float *dx, long N, int in, int out, float beta);
void fr_swiglu_fwd(const float *g, const float *u, float *out, long n);
void fr_swiglu_bwd(const float *dout, const float *g, const float *u, float *dg, float *du, long n);
void fr_logsoftmax_gather(const float *logits, const int32_t *tgt, float *logp, float *lse, long N, int V);
void fr_logsoftmax_gather_bwd(const float *logits, const float *lse, const int32_t *tgt,
                              const float *dlogp, float *dlogits, long N, int V);
void fr_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2,
              float eps, float wd, float bc1, float bc2, float gscale);
#endif
