/* N-API glue for kernels.c: reads typed arrays and integers, checks every bound a kernel will touch,
 * and throws a JS error naming the kernel and argument instead of reading or writing out of range.
 * It holds no state besides the thread count, and does no math itself. */
#include <node_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "kernels.h"

typedef struct {
  napi_env env;
  napi_value argv[40];
  size_t argc;
  int i;
  const char *op;
  int failed;
} Args;

static void fail(Args *a, const char *code, const char *fmt, ...) {
  if (a->failed) return;
  char msg[256];
  int k = snprintf(msg, sizeof msg, "frugal native %s: ", a->op);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - k, fmt, ap);
  va_end(ap);
  napi_throw_range_error(a->env, code, msg);
  a->failed = 1;
}

static void *arr(Args *a, const char *name, napi_typedarray_type want, size_t *len) {
  napi_value v = a->i < (int)a->argc ? a->argv[a->i] : NULL;
  a->i++;
  *len = 0;
  if (a->failed) return NULL;
  bool is = false;
  if (v) napi_is_typedarray(a->env, v, &is);
  if (!is) {
    fail(a, "ERR_FRUGAL_TYPE", "argument %s must be a typed array", name);
    return NULL;
  }
  napi_typedarray_type t;
  void *data;
  napi_get_typedarray_info(a->env, v, &t, len, &data, NULL, NULL);
  if (t != want) {
    fail(a, "ERR_FRUGAL_TYPE",
         want == napi_float32_array ? "argument %s must be a Float32Array"
         : want == napi_uint16_array ? "argument %s must be a Uint16Array (bfloat16 bits)"
                                     : "argument %s must be an Int32Array",
         name);
    return NULL;
  }
  return data;
}
/* a KV cache: a Float32Array, or a Uint16Array of bfloat16 bits (*half = 1) */
static void *kv(Args *a, const char *name, size_t *len, int *half) {
  napi_value v = a->i < (int)a->argc ? a->argv[a->i] : NULL;
  bool is = false;
  napi_typedarray_type t = napi_float32_array;
  if (v && !a->failed) {
    napi_is_typedarray(a->env, v, &is);
    if (is) napi_get_typedarray_info(a->env, v, &t, NULL, NULL, NULL, NULL);
  }
  *half = t == napi_uint16_array;
  return arr(a, name, *half ? napi_uint16_array : napi_float32_array, len);
}
static float *f32(Args *a, const char *name, size_t *len) {
  return (float *)arr(a, name, napi_float32_array, len);
}
static int32_t *i32(Args *a, const char *name, size_t *len) {
  return (int32_t *)arr(a, name, napi_int32_array, len);
}
static uint16_t *u16(Args *a, const char *name, size_t *len) {
  return (uint16_t *)arr(a, name, napi_uint16_array, len);
}
static double num(Args *a, const char *name) {
  napi_value v = a->i < (int)a->argc ? a->argv[a->i] : NULL;
  a->i++;
  double d = 0;
  if (a->failed) return 0;
  if (!v || napi_get_value_double(a->env, v, &d) != napi_ok)
    fail(a, "ERR_FRUGAL_TYPE", "argument %s must be a number", name);
  return d;
}
static long dim(Args *a, const char *name) {
  double d = num(a, name);
  if (!a->failed && (d < 0 || d != (double)(long)d))
    fail(a, "ERR_FRUGAL_SHAPE", "%s must be a non-negative integer, got %g", name, d);
  return (long)d;
}
static void need(Args *a, const char *name, size_t have, double want) {
  if (!a->failed && (double)have < want)
    fail(a, "ERR_FRUGAL_SHAPE", "%s has %.0f elements, the shapes given need %.0f", name, (double)have, want);
}
static void ids_in(Args *a, const char *name, const int32_t *ids, size_t n, long limit) {
  for (size_t i = 0; i < n && !a->failed; i++)
    if (ids[i] < 0 || ids[i] >= limit)
      fail(a, "ERR_FRUGAL_INDEX", "%s holds %d at index %zu, outside [0, %ld)", name, (int)ids[i], i, limit);
}

#define BEGIN(name)                                                              \
  Args A = {env, {0}, 40, 0, name, 0};                                           \
  napi_get_cb_info(env, info, &A.argc, A.argv, NULL, NULL);                      \
  Args *a = &A;
#define DONE                                                                     \
  if (a->failed) return NULL;

/* extent of a row-major matrix of r x c (as stored) with leading dimension ld */
static double extent(long r, long c, long ld) { return r == 0 || c == 0 ? 0 : (double)(r - 1) * ld + c; }

static napi_value gemm(napi_env env, napi_callback_info info) {
  BEGIN("gemm");
  int ta = (int)dim(a, "transA"), tb = (int)dim(a, "transB");
  long M = dim(a, "M"), N = dim(a, "N"), K = dim(a, "K");
  float alpha = (float)num(a, "alpha");
  size_t nA, nB, nC;
  float *A_ = f32(a, "A", &nA);
  long offA = dim(a, "offA"), lda = dim(a, "lda"), sA = dim(a, "strideA");
  float *B_ = f32(a, "B", &nB);
  long offB = dim(a, "offB"), ldb = dim(a, "ldb"), sB = dim(a, "strideB");
  float beta = (float)num(a, "beta");
  float *C_ = f32(a, "C", &nC);
  long offC = dim(a, "offC"), ldc = dim(a, "ldc"), sC = dim(a, "strideC");
  long batch = dim(a, "batch");
  DONE;
  if (batch == 0 || M == 0 || N == 0) return NULL;
  long ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  if (lda < ac || ldb < bc || ldc < N) fail(a, "ERR_FRUGAL_SHAPE", "leading dimensions too small: lda=%ld (needs %ld), ldb=%ld (needs %ld), ldc=%ld (needs %ld)", lda, ac, ldb, bc, ldc, N);
  need(a, "A", nA, offA + (double)(batch - 1) * sA + extent(ar, ac, lda));
  need(a, "B", nB, offB + (double)(batch - 1) * sB + extent(br, bc, ldb));
  need(a, "C", nC, offC + (double)(batch - 1) * sC + extent(M, N, ldc));
  DONE;
  if (K == 0) { /* sgemm with K=0 only scales C; keep it simple and exact */
    for (long b = 0; b < batch; b++)
      for (long i = 0; i < M; i++)
        for (long j = 0; j < N; j++) { float *c = C_ + offC + b * sC + i * ldc + j; *c = beta == 0 ? 0 : *c * beta; }
    return NULL;
  }
  fr_gemm(ta, tb, (int)M, (int)N, (int)K, alpha, A_ + offA, (int)lda, sA, B_ + offB, (int)ldb, sB, beta,
          C_ + offC, (int)ldc, sC, (int)batch);
  return NULL;
}

static napi_value ew2(napi_env env, napi_callback_info info, const char *op, int kind) {
  BEGIN(op);
  size_t na, nb, no;
  float *x = f32(a, "a", &na), *y = f32(a, "b", &nb), *o = f32(a, "out", &no);
  DONE;
  need(a, "b", nb, (double)na);
  need(a, "out", no, (double)na);
  DONE;
  if (kind == 0) fr_add(x, y, o, (long)na); else fr_mul(x, y, o, (long)na);
  return NULL;
}
static napi_value add(napi_env env, napi_callback_info info) { return ew2(env, info, "add", 0); }
static napi_value mul(napi_env env, napi_callback_info info) { return ew2(env, info, "mul", 1); }

static napi_value axpy(napi_env env, napi_callback_info info) {
  BEGIN("axpy");
  float al = (float)num(a, "alpha");
  size_t nx, ny;
  float *x = f32(a, "x", &nx), *y = f32(a, "y", &ny);
  DONE;
  need(a, "y", ny, (double)nx);
  DONE;
  fr_axpy(al, x, y, (long)nx);
  return NULL;
}

static napi_value sumsq(napi_env env, napi_callback_info info) {
  BEGIN("sumsq");
  size_t n;
  float *x = f32(a, "x", &n);
  DONE;
  napi_value r;
  napi_create_double(env, fr_sumsq(x, (long)n), &r);
  return r;
}

static napi_value embedding_fwd(napi_env env, napi_callback_info info) {
  BEGIN("embedding_fwd");
  size_t nw, ni, no;
  float *W = f32(a, "W", &nw);
  int32_t *ids = i32(a, "ids", &ni);
  float *o = f32(a, "out", &no);
  long C = dim(a, "C");
  DONE;
  if (C == 0) return NULL;
  need(a, "out", no, (double)ni * C);
  ids_in(a, "ids", ids, ni, (long)(nw / C));
  DONE;
  fr_embedding_fwd(W, ids, o, (long)ni, (int)C);
  return NULL;
}
static napi_value embedding_bwd(napi_env env, napi_callback_info info) {
  BEGIN("embedding_bwd");
  size_t nd, ni, nw;
  float *d = f32(a, "dout", &nd);
  int32_t *ids = i32(a, "ids", &ni);
  float *dW = f32(a, "dW", &nw);
  long C = dim(a, "C");
  DONE;
  if (C == 0) return NULL;
  need(a, "dout", nd, (double)ni * C);
  ids_in(a, "ids", ids, ni, (long)(nw / C));
  DONE;
  fr_embedding_bwd(d, ids, dW, (long)ni, (int)C);
  return NULL;
}

static napi_value rmsnorm_fwd(napi_env env, napi_callback_info info) {
  BEGIN("rmsnorm_fwd");
  size_t nx, nw, no, nr;
  float *x = f32(a, "x", &nx), *w = f32(a, "w", &nw), *o = f32(a, "out", &no), *r = f32(a, "rstd", &nr);
  long rows = dim(a, "rows"), C = dim(a, "C");
  float eps = (float)num(a, "eps");
  DONE;
  need(a, "x", nx, (double)rows * C);
  need(a, "w", nw, (double)C);
  need(a, "out", no, (double)rows * C);
  need(a, "rstd", nr, (double)rows);
  DONE;
  fr_rmsnorm_fwd(x, w, o, r, rows, (int)C, eps);
  return NULL;
}
static napi_value rmsnorm_bwd(napi_env env, napi_callback_info info) {
  BEGIN("rmsnorm_bwd");
  size_t nd, nx, nw, nr, ndx, ndw;
  float *d = f32(a, "dout", &nd), *x = f32(a, "x", &nx), *w = f32(a, "w", &nw), *r = f32(a, "rstd", &nr);
  float *dx = f32(a, "dx", &ndx), *dw = f32(a, "dw", &ndw);
  long rows = dim(a, "rows"), C = dim(a, "C");
  DONE;
  double n = (double)rows * C;
  need(a, "dout", nd, n); need(a, "x", nx, n); need(a, "dx", ndx, n);
  need(a, "w", nw, (double)C); need(a, "dw", ndw, (double)C); need(a, "rstd", nr, (double)rows);
  DONE;
  fr_rmsnorm_bwd(d, x, w, r, dx, dw, rows, (int)C);
  return NULL;
}

static napi_value rope(napi_env env, napi_callback_info info) {
  BEGIN("rope");
  size_t nx, no, np, nc, ns;
  float *x = f32(a, "x", &nx), *o = f32(a, "out", &no);
  int32_t *pos = i32(a, "pos", &np);
  float *c = f32(a, "cos", &nc), *s = f32(a, "sin", &ns);
  long rows = dim(a, "rows"), H = dim(a, "H"), D = dim(a, "D");
  int inv = (int)dim(a, "inverse");
  DONE;
  if (D % 2) fail(a, "ERR_FRUGAL_SHAPE", "head dim D must be even, got %ld", D);
  double n = (double)rows * H * D;
  need(a, "x", nx, n); need(a, "out", no, n); need(a, "pos", np, (double)rows);
  DONE;
  if (D) ids_in(a, "pos", pos, rows, (long)(nc < ns ? nc : ns) / (D / 2));
  DONE;
  fr_rope(x, o, pos, c, s, rows, (int)H, (int)D, inv);
  return NULL;
}

static int attn_shape(Args *a, long B, long T, long H, long KVH, long D) {
  if (!a->failed && (KVH == 0 || H % KVH))
    fail(a, "ERR_FRUGAL_SHAPE", "H=%ld heads must be a multiple of KVH=%ld", H, KVH);
  return !a->failed;
}

/* attention's forward and backward with P (B,H,T,T) kept, or only each row's max and 1/Σ exp, stats (B,H,T,2) */
static napi_value attn_fwd_any(napi_env env, napi_callback_info info, const char *op, int keepStats) {
  BEGIN(op);
  const char *saved = keepStats ? "stats" : "P";
  size_t nq, nk, nv, no, np;
  float *q = f32(a, "q", &nq), *k = f32(a, "k", &nk), *v = f32(a, "v", &nv), *o = f32(a, "out", &no);
  float *P = f32(a, saved, &np);
  long B = dim(a, "B"), T = dim(a, "T"), H = dim(a, "H"), KVH = dim(a, "KVH"), D = dim(a, "D");
  float scale = (float)num(a, "scale");
  DONE;
  if (!attn_shape(a, B, T, H, KVH, D)) return NULL;
  need(a, "q", nq, (double)B * T * H * D); need(a, "out", no, (double)B * T * H * D);
  need(a, "k", nk, (double)B * T * KVH * D); need(a, "v", nv, (double)B * T * KVH * D);
  need(a, saved, np, (double)B * H * T * (keepStats ? 2 : T));
  DONE;
  if (B && T && keepStats) fr_attn_fwd_stats(q, k, v, o, P, (int)B, (int)T, (int)H, (int)KVH, (int)D, scale);
  else if (B && T) fr_attn_fwd(q, k, v, o, P, (int)B, (int)T, (int)H, (int)KVH, (int)D, scale);
  return NULL;
}
static napi_value attn_bwd_any(napi_env env, napi_callback_info info, const char *op, int keepStats) {
  BEGIN(op);
  const char *saved = keepStats ? "stats" : "P";
  size_t nd, nq, nk, nv, np, ndq, ndk, ndv;
  float *d = f32(a, "dout", &nd), *q = f32(a, "q", &nq), *k = f32(a, "k", &nk), *v = f32(a, "v", &nv);
  float *P = f32(a, saved, &np);
  float *dq = f32(a, "dq", &ndq), *dk = f32(a, "dk", &ndk), *dv = f32(a, "dv", &ndv);
  long B = dim(a, "B"), T = dim(a, "T"), H = dim(a, "H"), KVH = dim(a, "KVH"), D = dim(a, "D");
  float scale = (float)num(a, "scale");
  DONE;
  if (!attn_shape(a, B, T, H, KVH, D)) return NULL;
  double nQ = (double)B * T * H * D, nK = (double)B * T * KVH * D;
  need(a, "dout", nd, nQ); need(a, "q", nq, nQ); need(a, "dq", ndq, nQ);
  need(a, "k", nk, nK); need(a, "v", nv, nK); need(a, "dk", ndk, nK); need(a, "dv", ndv, nK);
  need(a, saved, np, (double)B * H * T * (keepStats ? 2 : T));
  DONE;
  int b = (int)B, t = (int)T, h = (int)H, kvh = (int)KVH, dd = (int)D;
  if (B && T && keepStats) fr_attn_bwd_stats(d, q, k, v, P, dq, dk, dv, b, t, h, kvh, dd, scale);
  else if (B && T) fr_attn_bwd(d, q, k, v, P, dq, dk, dv, b, t, h, kvh, dd, scale);
  return NULL;
}
static napi_value attn_fwd(napi_env env, napi_callback_info info) { return attn_fwd_any(env, info, "attn_fwd", 0); }
static napi_value attn_bwd(napi_env env, napi_callback_info info) { return attn_bwd_any(env, info, "attn_bwd", 0); }
static napi_value attn_fwd_stats(napi_env env, napi_callback_info info) {
  return attn_fwd_any(env, info, "attn_fwd_stats", 1);
}
static napi_value attn_bwd_stats(napi_env env, napi_callback_info info) {
  return attn_bwd_any(env, info, "attn_bwd_stats", 1);
}
static napi_value attn_cached(napi_env env, napi_callback_info info) {
  BEGIN("attn_cached");
  size_t nq, nk, nv, no, np, ns;
  int hk = 0, hv = 0;
  float *q = f32(a, "q", &nq);
  void *kc = kv(a, "kCache", &nk, &hk), *vc = kv(a, "vCache", &nv, &hv);
  float *o = f32(a, "out", &no);
  int32_t *pos = i32(a, "pos", &np), *slot = i32(a, "slot", &ns);
  long B = dim(a, "B"), Tn = dim(a, "Tn"), H = dim(a, "H"), KVH = dim(a, "KVH"), D = dim(a, "D"), Tmax = dim(a, "Tmax");
  float scale = (float)num(a, "scale");
  DONE;
  if (!attn_shape(a, B, Tn, H, KVH, D)) return NULL;
  need(a, "q", nq, (double)B * Tn * H * D); need(a, "out", no, (double)B * Tn * H * D);
  need(a, "pos", np, (double)B); need(a, "slot", ns, (double)B);
  DONE;
  double slotSize = (double)Tmax * KVH * D;
  long slots = slotSize > 0 ? (long)((nk < nv ? nk : nv) / slotSize) : 0;
  ids_in(a, "slot", slot, B, slots);
  DONE;
  for (long b = 0; b < B && !a->failed; b++)
    if (pos[b] < 0 || pos[b] + Tn > Tmax)
      fail(a, "ERR_FRUGAL_INDEX", "pos: sequence %ld at position %d + %ld new tokens runs past the cache length %ld", b, (int)pos[b], Tn, Tmax);
  DONE;
  if (hk != hv) fail(a, "ERR_FRUGAL_TYPE", "kCache and vCache must be of one type (Float32Array or Uint16Array)");
  DONE;
  if (B && Tn) fr_attn_cached(q, kc, vc, hk, o, pos, slot, (int)B, (int)Tn, (int)H, (int)KVH, (int)D, (int)Tmax, scale);
  return NULL;
}

/* an optional vector: an empty Float32Array means "none" (NULL), otherwise it must hold n values */
static const float *opt_vec(Args *a, const char *name, float *p, size_t len, long n) {
  if (len == 0) return NULL;
  need(a, name, len, (double)n);
  return p;
}
/* decodeBlock and decodeBlockHalf: the same arguments, the seven projections as Float32Array or as Uint16Array
 * (bfloat16 bits) */
static napi_value decode_block_args(napi_env env, napi_callback_info info, int half) {
  BEGIN(half ? "decode_block_half" : "decode_block");
  size_t nx, n1, nq, nk, nv, nbq, nbk, nbv, no, n2, ng, nu, nd, nc, ns, nkc, nvc, np, nsl;
  const void *W[7];
  size_t *nW[7] = {&nq, &nk, &nv, &no, &ng, &nu, &nd};
  const char *names[7] = {"wq", "wk", "wv", "wo", "wg", "wu", "wd"};
  float *x = f32(a, "x", &nx), *ln1 = f32(a, "ln1", &n1);
  for (int j = 0; j < 3; j++) W[j] = half ? (const void *)u16(a, names[j], nW[j]) : (const void *)f32(a, names[j], nW[j]);
  float *bq0 = f32(a, "bq", &nbq), *bk0 = f32(a, "bk", &nbk), *bv0 = f32(a, "bv", &nbv);
  W[3] = half ? (const void *)u16(a, "wo", &no) : (const void *)f32(a, "wo", &no);
  float *ln2 = f32(a, "ln2", &n2);
  for (int j = 4; j < 7; j++) W[j] = half ? (const void *)u16(a, names[j], nW[j]) : (const void *)f32(a, names[j], nW[j]);
  int hk = 0, hv = 0;
  float *cs = f32(a, "cos", &nc), *sn = f32(a, "sin", &ns);
  void *kc = kv(a, "kCache", &nkc, &hk), *vc = kv(a, "vCache", &nvc, &hv);
  int32_t *pos = i32(a, "pos", &np), *slot = i32(a, "slot", &nsl);
  long N = dim(a, "N"), C = dim(a, "C"), H = dim(a, "H"), KVH = dim(a, "KVH"), D = dim(a, "D"), F = dim(a, "F"), Tmax = dim(a, "Tmax");
  float eps = (float)num(a, "eps");
  size_t ngr;
  int32_t *gr = i32(a, "groups", &ngr);
  DONE;
  if (!attn_shape(a, N, 1, H, KVH, D)) return NULL;
  int G = 1, gC = 0, gH = 0, gKVH = 0, gF = 0;
  if (ngr) {
    if (ngr != 5) fail(a, "ERR_FRUGAL_SHAPE", "groups holds %zu values, expected 0 (dense) or 5 (n, hidden, heads, kvHeads, intermediate)", ngr);
    DONE;
    G = gr[0], gC = gr[1], gH = gr[2], gKVH = gr[3], gF = gr[4];
    if (G < 1 || gC < 1 || gKVH < 1 || gF < 1 || (long)G * gC > C || (long)G * gH > H || (long)G * gKVH > KVH ||
        (long)G * gF > F || (long)gH * KVH != (long)gKVH * H)
      fail(a, "ERR_FRUGAL_SHAPE", "groups (%d, %d, %d, %d, %d) do not fit C %ld, H %ld, KVH %ld, F %ld with H/KVH query heads per key/value head", G, gC, gH, gKVH, gF, C, H, KVH, F);
    DONE;
  }
  if (D % 2) fail(a, "ERR_FRUGAL_SHAPE", "head dim D must be even, got %ld", D);
  if (hk != hv) fail(a, "ERR_FRUGAL_TYPE", "kCache and vCache must be of one type (Float32Array or Uint16Array)");
  long qd = H * D, kd = KVH * D;
  need(a, "x", nx, (double)N * C); need(a, "ln1", n1, (double)C); need(a, "ln2", n2, (double)C);
  need(a, "wq", nq, (double)qd * C); need(a, "wk", nk, (double)kd * C); need(a, "wv", nv, (double)kd * C);
  need(a, "wo", no, (double)C * qd); need(a, "wg", ng, (double)F * C); need(a, "wu", nu, (double)F * C);
  need(a, "wd", nd, (double)C * F); need(a, "pos", np, (double)N); need(a, "slot", nsl, (double)N);
  DONE;
  const float *bq = opt_vec(a, "bq", bq0, nbq, qd), *bk = opt_vec(a, "bk", bk0, nbk, kd), *bv = opt_vec(a, "bv", bv0, nbv, kd);
  DONE;
  double slotSize = (double)Tmax * kd;
  long slots = slotSize > 0 ? (long)((nkc < nvc ? nkc : nvc) / slotSize) : 0;
  ids_in(a, "slot", slot, N, slots);
  ids_in(a, "pos", pos, N, Tmax);
  if (D) ids_in(a, "pos", pos, N, (long)(nc < ns ? nc : ns) / (D / 2));
  DONE;
  const float *f[7] = {0};
  const uint16_t *h[7] = {0};
  for (int j = 0; j < 7; j++) {
    if (half) h[j] = (const uint16_t *)W[j];
    else f[j] = (const float *)W[j];
  }
  FrBlock w = {ln1, f[0], f[1], f[2], bq, bk, bv, f[3], ln2, f[4], f[5], f[6],
               h[0], h[1], h[2], h[3], h[4], h[5], h[6], (int)C, (int)H, (int)KVH, (int)D, (int)F, eps,
               G, gC, gH, gKVH, gF};
  if (N && fr_decode_block(&w, x, (int)N, pos, slot, cs, sn, kc, vc, hk, (int)Tmax))
    fail(a, "ERR_FRUGAL_MEMORY", "out of memory for the scratch of %ld rows", N);
  return NULL;
}
static napi_value decode_block(napi_env env, napi_callback_info info) { return decode_block_args(env, info, 0); }
static napi_value decode_block_half(napi_env env, napi_callback_info info) { return decode_block_args(env, info, 1); }

/* linearBf16 (y = beta*y + x Wᵀ) and matmulBf16 (dx = beta*dx + dy W): the same arguments, W (out, in) in bfloat16;
 * the input has `in` columns forward and `out` backward */
static napi_value bf16_args(napi_env env, napi_callback_info info, int backward) {
  BEGIN(backward ? "matmul_bf16" : "linear_bf16");
  size_t na, nw, nb;
  float *src = f32(a, backward ? "dy" : "x", &na);
  uint16_t *W = u16(a, "W", &nw);
  float *dst = f32(a, backward ? "dx" : "y", &nb);
  long N = dim(a, "N"), in = dim(a, "in"), out = dim(a, "out");
  float beta = (float)num(a, "beta");
  DONE;
  long srcCols = backward ? out : in, dstCols = backward ? in : out;
  need(a, backward ? "dy" : "x", na, (double)N * srcCols); need(a, "W", nw, (double)out * in);
  need(a, backward ? "dx" : "y", nb, (double)N * dstCols);
  DONE;
  if (!backward) fr_linear_bf16(src, W, dst, N, (int)in, (int)out, beta);
  else if (N && fr_matmul_bf16(src, W, dst, N, (int)in, (int)out, beta))
    fail(a, "ERR_FRUGAL_MEMORY", "out of memory widening a %ld x %ld bfloat16 matrix", out, in);
  return NULL;
}
static napi_value linear_bf16(napi_env env, napi_callback_info info) { return bf16_args(env, info, 0); }
static napi_value matmul_bf16(napi_env env, napi_callback_info info) { return bf16_args(env, info, 1); }

static napi_value swiglu_fwd(napi_env env, napi_callback_info info) {
  BEGIN("swiglu_fwd");
  size_t ng, nu, no;
  float *g = f32(a, "g", &ng), *u = f32(a, "u", &nu), *o = f32(a, "out", &no);
  DONE;
  need(a, "u", nu, (double)ng); need(a, "out", no, (double)ng);
  DONE;
  fr_swiglu_fwd(g, u, o, (long)ng);
  return NULL;
}
static napi_value swiglu_bwd(napi_env env, napi_callback_info info) {
  BEGIN("swiglu_bwd");
  size_t nd, ng, nu, ndg, ndu;
  float *d = f32(a, "dout", &nd), *g = f32(a, "g", &ng), *u = f32(a, "u", &nu), *dg = f32(a, "dg", &ndg), *du = f32(a, "du", &ndu);
  DONE;
  need(a, "dout", nd, (double)ng); need(a, "u", nu, (double)ng); need(a, "dg", ndg, (double)ng); need(a, "du", ndu, (double)ng);
  DONE;
  fr_swiglu_bwd(d, g, u, dg, du, (long)ng);
  return NULL;
}

static napi_value lsm_gather(napi_env env, napi_callback_info info) {
  BEGIN("logsoftmax_gather");
  size_t nl, nt, np, ns;
  float *l = f32(a, "logits", &nl);
  int32_t *t = i32(a, "targets", &nt);
  float *lp = f32(a, "logp", &np), *lse = f32(a, "lse", &ns);
  long N = dim(a, "N"), V = dim(a, "V");
  DONE;
  need(a, "logits", nl, (double)N * V); need(a, "targets", nt, (double)N);
  need(a, "logp", np, (double)N); need(a, "lse", ns, (double)N);
  DONE;
  ids_in(a, "targets", t, N, V);
  DONE;
  fr_logsoftmax_gather(l, t, lp, lse, N, (int)V);
  return NULL;
}
static napi_value lsm_gather_bwd(napi_env env, napi_callback_info info) {
  BEGIN("logsoftmax_gather_bwd");
  size_t nl, ns, nt, nd, ndl;
  float *l = f32(a, "logits", &nl), *lse = f32(a, "lse", &ns);
  int32_t *t = i32(a, "targets", &nt);
  float *d = f32(a, "dlogp", &nd), *dl = f32(a, "dlogits", &ndl);
  long N = dim(a, "N"), V = dim(a, "V");
  DONE;
  need(a, "logits", nl, (double)N * V); need(a, "dlogits", ndl, (double)N * V);
  need(a, "targets", nt, (double)N); need(a, "lse", ns, (double)N); need(a, "dlogp", nd, (double)N);
  DONE;
  ids_in(a, "targets", t, N, V);
  DONE;
  fr_logsoftmax_gather_bwd(l, lse, t, d, dl, N, (int)V);
  return NULL;
}

static napi_value adamw(napi_env env, napi_callback_info info) {
  BEGIN("adamw");
  size_t np, ng, nm, nv;
  float *p = f32(a, "param", &np), *g = f32(a, "grad", &ng), *m = f32(a, "m", &nm), *v = f32(a, "v", &nv);
  float lr = (float)num(a, "lr"), b1 = (float)num(a, "beta1"), b2 = (float)num(a, "beta2"), eps = (float)num(a, "eps");
  float wd = (float)num(a, "weightDecay"), bc1 = (float)num(a, "bc1"), bc2 = (float)num(a, "bc2"), gs = (float)num(a, "gradScale");
  DONE;
  need(a, "grad", ng, (double)np); need(a, "m", nm, (double)np); need(a, "v", nv, (double)np);
  DONE;
  fr_adamw(p, g, m, v, (long)np, lr, b1, b2, eps, wd, bc1, bc2, gs);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  BEGIN("setThreads");
  long n = dim(a, "n");
  DONE;
  fr_init_threads((int)n);
  return NULL;
}

static napi_value info_fn(napi_env env, napi_callback_info info) {
  napi_value o, s, t;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, fr_simd_name(), NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, o, "simd", s);
  napi_create_int32(env, fr_num_threads(), &t);
  napi_set_named_property(env, o, "threads", t);
  return o;
}

#define FN(name, f) {name, 0, f, 0, 0, 0, napi_default, 0}
static napi_value init(napi_env env, napi_value exports) {
  fr_init_threads(1);
  napi_property_descriptor d[] = {
      FN("gemm", gemm), FN("add", add), FN("mul", mul), FN("axpy", axpy), FN("sumsq", sumsq),
      FN("embeddingFwd", embedding_fwd), FN("embeddingBwd", embedding_bwd),
      FN("rmsnormFwd", rmsnorm_fwd), FN("rmsnormBwd", rmsnorm_bwd), FN("rope", rope),
      FN("attnFwd", attn_fwd), FN("attnBwd", attn_bwd), FN("attnFwdStats", attn_fwd_stats),
      FN("attnBwdStats", attn_bwd_stats), FN("attnCached", attn_cached), FN("decodeBlock", decode_block),
      FN("decodeBlockHalf", decode_block_half), FN("linearBf16", linear_bf16), FN("matmulBf16", matmul_bf16),
      FN("swigluFwd", swiglu_fwd), FN("swigluBwd", swiglu_bwd),
      FN("logsoftmaxGather", lsm_gather), FN("logsoftmaxGatherBwd", lsm_gather_bwd),
      FN("adamw", adamw), FN("setThreads", set_threads), FN("info", info_fn),
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
