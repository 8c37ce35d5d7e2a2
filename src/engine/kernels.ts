// The kernel interface: the only thing a backend (TS reference, native C, WebGPU) implements.
// Kernels are flat functions over Float32Array/Int32Array buffers with explicit sizes; they know nothing
// of tensors, tapes or models. Rule: forward kernels overwrite outputs, backward kernels ADD into grads.

export type F32 = Float32Array;
export type I32 = Int32Array;
export type U16 = Uint16Array;
/** a KV cache: float32, or bfloat16 bits (half the bytes per position) */
export type KV = F32 | U16;

/** decodeBlock's arguments, the seven projections of type W (float32, or bfloat16 bits). */
export type DecodeBlockArgs<W> = [
  x: F32,
  ln1: F32,
  wq: W,
  wk: W,
  wv: W,
  bq: F32,
  bk: F32,
  bv: F32,
  wo: W,
  ln2: F32,
  wg: W,
  wu: W,
  wd: W,
  cos: F32,
  sin: F32,
  kCache: KV,
  vCache: KV,
  pos: I32,
  slot: I32,
  N: number,
  C: number,
  H: number,
  KVH: number,
  D: number,
  F: number,
  Tmax: number,
  eps: number,
  /** a merged ensemble's members (n, hidden, heads, kvHeads, intermediate), empty when dense; the reference and
   * WebGPU sets run dense, which gives the same outputs (weights off the blocks are zero) */
  groups: I32,
];

export interface Kernels {
  /** C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], row-major, op = transpose when the flag is 1. */
  gemm(
    ta: number,
    tb: number,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: F32,
    offA: number,
    lda: number,
    strideA: number,
    B: F32,
    offB: number,
    ldb: number,
    strideB: number,
    beta: number,
    C: F32,
    offC: number,
    ldc: number,
    strideC: number,
    batch: number,
  ): void;
  add(a: F32, b: F32, out: F32): void;
  mul(a: F32, b: F32, out: F32): void;
  /** y += alpha·x */
  axpy(alpha: number, x: F32, y: F32): void;
  sumsq(x: F32): number;
  embeddingFwd(W: F32, ids: I32, out: F32, C: number): void;
  embeddingBwd(dout: F32, ids: I32, dW: F32, C: number): void;
  rmsnormFwd(x: F32, w: F32, out: F32, rstd: F32, rows: number, C: number, eps: number): void;
  rmsnormBwd(dout: F32, x: F32, w: F32, rstd: F32, dx: F32, dw: F32, rows: number, C: number): void;
  /** Rotate-half RoPE over (rows, H, D); inverse=1 rotates by −angle and ADDS into out (the backward). */
  rope(x: F32, out: F32, pos: I32, cos: F32, sin: F32, rows: number, H: number, D: number, inverse: number): void;
  /**
   * Causal attention: q (B,T,H,D), k/v (B,T,KVH,D) → out (B,T,H,D); P (B,H,T,T) saved for backward. Only P on
   * and below the diagonal is defined: a kernel may leave the rest unwritten, and attnBwd never reads it.
   */
  attnFwd(
    q: F32,
    k: F32,
    v: F32,
    out: F32,
    P: F32,
    B: number,
    T: number,
    H: number,
    KVH: number,
    D: number,
    scale: number,
  ): void;
  attnBwd(
    dout: F32,
    q: F32,
    k: F32,
    v: F32,
    P: F32,
    dq: F32,
    dk: F32,
    dv: F32,
    B: number,
    T: number,
    H: number,
    KVH: number,
    D: number,
    scale: number,
  ): void;
  /**
   * The same attention with each query row's max score and 1/Σ exp, stats (B,H,T,2), in P's place: attnBwdStats
   * rebuilds P from them block by block, so memory does not grow with T². Optional: a set without them runs
   * attnFwd/attnBwd.
   */
  attnFwdStats?: Kernels["attnFwd"];
  attnBwdStats?: Kernels["attnBwd"];
  /**
   * Tn new queries per sequence against a KV cache (slots,Tmax,KVH,D); row b reads slot[b], query t sits at pos[b]+t.
   */
  attnCached(
    q: F32,
    kCache: KV,
    vCache: KV,
    out: F32,
    pos: I32,
    slot: I32,
    B: number,
    Tn: number,
    H: number,
    KVH: number,
    D: number,
    Tmax: number,
    scale: number,
  ): void;
  /**
   * One decoder block for N sequences decoding one token each (row b of x (N, C) at pos[b] in cache slot
   * slot[b]): x += attn(rmsnorm(x)); x += swiglu-mlp(rmsnorm(x)), in place; writes the new key (after
   * RoPE) and value into the caches. Biases may be empty (none). Weights are (out, in) as in linear().
   */
  decodeBlock(...args: DecodeBlockArgs<F32>): void;
  /** decodeBlock with the seven projections as bfloat16 bits (the float32 layout, half the bytes). */
  decodeBlockHalf(...args: DecodeBlockArgs<U16>): void;
  /** dx (N, in) = beta·dx + dy (N, out) · W with W (out, in) as bfloat16 bits: a frozen bf16 linear's input gradient. */
  matmulBf16(dy: F32, W: U16, dx: F32, N: number, inF: number, outF: number, beta: number): void;
  /** y (N, out) = beta·y + x (N, in) · Wᵀ with W (out, in) as bfloat16 bits; no gradient. */
  linearBf16(x: F32, W: U16, y: F32, N: number, inF: number, outF: number, beta: number): void;
  swigluFwd(g: F32, u: F32, out: F32): void;
  swigluBwd(dout: F32, g: F32, u: F32, dg: F32, du: F32): void;
  /** logp[n] = logits[n, tgt[n]] − logsumexp(logits[n]); lse saved for backward. */
  logsoftmaxGather(logits: F32, targets: I32, logp: F32, lse: F32, N: number, V: number): void;
  logsoftmaxGatherBwd(logits: F32, lse: F32, targets: I32, dlogp: F32, dlogits: F32, N: number, V: number): void;
  adamw(
    param: F32,
    grad: F32,
    m: F32,
    v: F32,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    gradScale: number,
  ): void;
}

export interface KernelSet {
  name: "native" | "reference" | "webgpu";
  /** e.g. "native: OpenBLAS sgemm (coretype Haswell), avx512 loops, 2 threads" */
  description: string;
  k: Kernels;
}
