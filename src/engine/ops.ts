// The fused ops: each checks shapes, runs a forward kernel and records its hand-written backward.
// Shapes use B batch, T time, H heads, KVH kv heads, D head dim, C channels, V vocab, N rows.
// Ops never loop over numbers themselves (kernels do) and never keep state between steps.
import { FrugalError, shapeError, internal } from "../common/errors.js";
import { kernels } from "./backend.js";
import type { KV } from "./kernels.js";
import { constant, fillZero, isGradEnabled, output, record, Tensor } from "./tensor.js";

const K = () => kernels().k;
const tracks = (...ts: Tensor[]) => isGradEnabled() && ts.some((t) => t.requiresGrad);
const checkAll = process.env.FRUGAL_CHECK_FINITE === "1";

/** Throws naming the op when a tensor holds NaN or ±Inf (always for losses; every op with FRUGAL_CHECK_FINITE=1). */
export function assertFinite(op: string, what: string, x: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) {
      throw new FrugalError(
        "NONFINITE",
        `${op}: ${what} holds ${x[i]} at index ${i} of ${x.length}. ` +
          "Lower the learning rate, check the inputs, or rerun with FRUGAL_CHECK_FINITE=1 to find the first op that produced it.",
      );
    }
  }
}
function done(op: string, t: Tensor): Tensor {
  if (checkAll) assertFinite(op, "output", t.data);
  return t;
}
function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw shapeError(op, `[${a.shape.join(", ")}] and [${b.shape.join(", ")}]`, "two tensors of the same shape");
  }
}
function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1]!;
}

export interface MatmulOpts {
  transA?: boolean;
  transB?: boolean;
}

/** op(A)·op(B) for 2-D tensors, or batched over a shared leading dimension for 3-D tensors. */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOpts = {}): Tensor {
  const ta = opts.transA ? 1 : 0,
    tb = opts.transB ? 1 : 0;
  const nd = a.shape.length;
  if ((nd !== 2 && nd !== 3) || b.shape.length !== nd || (nd === 3 && a.shape[0] !== b.shape[0])) {
    throw shapeError(
      "matmul",
      `[${a.shape.join(", ")}] x [${b.shape.join(", ")}]`,
      "two 2-D tensors, or two 3-D tensors with the same batch size",
    );
  }
  const batch = nd === 3 ? a.shape[0]! : 1;
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const M = ta ? ac : ar,
    Ka = ta ? ar : ac,
    Kb = tb ? bc : br,
    N = tb ? br : bc;
  if (Ka !== Kb) {
    throw shapeError(
      "matmul",
      `[${a.shape.join(", ")}]${ta ? "ᵀ" : ""} x [${b.shape.join(", ")}]${tb ? "ᵀ" : ""}`,
      `inner dimensions to agree (${Ka} vs ${Kb})`,
    );
  }
  const out = output(nd === 3 ? [batch, M, N] : [M, N], tracks(a, b));
  const sA = ar * ac,
    sB = br * bc,
    sC = M * N;
  K().gemm(ta, tb, M, N, Ka, 1, a.dev, 0, ac, sA, b.dev, 0, bc, sB, 0, out.dev, 0, N, sC, batch);
  if (out.requiresGrad) {
    record(() => {
      const dC = out.gdev;
      if (a.requiresGrad) {
        if (!ta) K().gemm(0, 1 - tb, M, Ka, N, 1, dC, 0, N, sC, b.dev, 0, bc, sB, 1, a.gdev, 0, ac, sA, batch);
        else K().gemm(tb, 1, Ka, M, N, 1, b.dev, 0, bc, sB, dC, 0, N, sC, 1, a.gdev, 0, ac, sA, batch);
      }
      if (b.requiresGrad) {
        if (!tb) K().gemm(1 - ta, 0, Ka, N, M, 1, a.dev, 0, ac, sA, dC, 0, N, sC, 1, b.gdev, 0, bc, sB, batch);
        else K().gemm(1, ta, N, Ka, M, 1, dC, 0, N, sC, a.dev, 0, ac, sA, 1, b.gdev, 0, bc, sB, batch);
      }
    });
  }
  return done("matmul", out);
}

/** x (N, in) · Wᵀ with W (out, in) given as bfloat16 bits → (N, out); W is frozen, the gradient reaches x only. */
export function linearHalf(x: Tensor, W: Uint16Array, outF: number): Tensor {
  const inF = lastDim(x),
    N = x.size / inF;
  if (W.length !== outF * inF) throw shapeError("linearHalf", [W.length], `a (${outF}, ${inF}) bfloat16 weight`);
  const out = output([N, outF], tracks(x));
  K().linearBf16(x.dev, W, out.dev, N, inF, outF, 0);
  // W is frozen: only the input's gradient flows back, dx += dy · W
  if (out.requiresGrad) record(() => K().matmulBf16(out.gdev, W, x.gdev, N, inF, outF, 1));
  return done("linearHalf", out);
}

/** x (N, in) · Wᵀ with W in the Hugging Face (out, in) layout → (N, out). */
export function linear(x: Tensor, W: Tensor): Tensor {
  return matmul(x, W, { transB: true });
}

/**
 * linear over the n diagonal blocks of W (out, in) only: output columns [m·outPer, (m+1)·outPer) read input
 * columns [m·inPer, (m+1)·inPer); outputs past n·outPer are 0 and inputs past n·inPer are not read. Equals
 * linear(x, W) when W is zero off those blocks (a merged ensemble, surgery.ts); the gradient reaches the blocks only,
 * so training keeps the rest of W zero. One batched gemm each way.
 */
export function linearBlocks(x: Tensor, W: Tensor, n: number, outPer: number, inPer: number): Tensor {
  const inF = lastDim(x),
    N = x.size / inF,
    [outF, wIn] = W.shape as [number, number];
  if (W.shape.length !== 2 || wIn !== inF || !(n >= 1 && n * outPer <= outF && n * inPer <= inF))
    throw shapeError(
      "linearBlocks",
      `[${x.shape.join(", ")}] x [${W.shape.join(", ")}]ᵀ in ${n} blocks of ${outPer}×${inPer}`,
      "a weight (out, in) matching the input's last dim, with n·outPer ≤ out and n·inPer ≤ in",
    );
  const out = output([N, outF], tracks(x, W));
  if (n * outPer < outF) fillZero(out.dev);
  const sW = outPer * inF + inPer; // from one diagonal block to the next
  K().gemm(0, 1, N, outPer, inPer, 1, x.dev, 0, inF, inPer, W.dev, 0, inF, sW, 0, out.dev, 0, outF, outPer, n);
  if (out.requiresGrad)
    record(() => {
      const dy = out.gdev;
      if (x.requiresGrad)
        K().gemm(0, 0, N, inPer, outPer, 1, dy, 0, outF, outPer, W.dev, 0, inF, sW, 1, x.gdev, 0, inF, inPer, n);
      if (W.requiresGrad)
        K().gemm(1, 0, outPer, inPer, N, 1, dy, 0, outF, outPer, x.dev, 0, inF, inPer, 1, W.gdev, 0, inF, sW, n);
    });
  return done("linearBlocks", out);
}

/** x (N, C) + bias (C) broadcast over rows; done as a rank-1 gemm so it needs no kernel of its own. */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const C = lastDim(x),
    N = x.size / C;
  if (bias.size !== C)
    throw shapeError("addBias", bias.shape, `a bias of ${C} values for input [${x.shape.join(", ")}]`);
  const out = output(x.shape, tracks(x, bias));
  const ones = output([N], false).data.fill(1);
  K().gemm(0, 0, N, C, 1, 1, ones, 0, 1, 0, bias.dev, 0, C, 0, 0, out.dev, 0, C, 0, 1);
  K().axpy(1, x.dev, out.dev);
  if (out.requiresGrad)
    record(() => {
      if (x.requiresGrad) K().axpy(1, out.gdev, x.gdev);
      if (bias.requiresGrad) K().gemm(1, 0, 1, C, N, 1, ones, 0, 1, 0, out.gdev, 0, C, 0, 1, bias.gdev, 0, C, 0, 1);
    });
  return done("addBias", out);
}

export function embedding(W: Tensor, ids: Int32Array): Tensor {
  const [V, C] = W.shape as [number, number];
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i]! >= 0 && ids[i]! < V))
      throw new FrugalError(
        "INDEX",
        `embedding: token id ${ids[i]} at position ${i} is outside the vocabulary [0, ${V})`,
      );
  }
  const out = output([ids.length, C], tracks(W));
  K().embeddingFwd(W.dev, ids, out.dev, C);
  if (out.requiresGrad) record(() => K().embeddingBwd(out.gdev, ids, W.gdev, C));
  return done("embedding", out);
}

export function rmsnorm(x: Tensor, w: Tensor, eps: number): Tensor {
  const C = lastDim(x),
    rows = x.size / C;
  if (w.size !== C) throw shapeError("rmsnorm", w.shape, `a weight of ${C} values for input [${x.shape.join(", ")}]`);
  const out = output(x.shape, tracks(x, w));
  const rstd = output([rows], false);
  K().rmsnormFwd(x.dev, w.dev, out.dev, rstd.dev, rows, C, eps);
  if (out.requiresGrad) record(() => K().rmsnormBwd(out.gdev, x.dev, w.dev, rstd.dev, x.gdev, w.gdev, rows, C));
  return done("rmsnorm", out);
}

export interface RopeTable {
  cos: Float32Array;
  sin: Float32Array;
  maxPos: number;
  headDim: number;
}
/**
 * cos/sin of pos·f_i for i < D/2 (Llama's rotate-half convention), with f_i = θ^(−2i/D) unless the model gives
 * its own inverse frequencies (a scaled RoPE).
 */
export function ropeTable(theta: number, headDim: number, maxPos: number, invFreq?: ArrayLike<number>): RopeTable {
  const half = headDim / 2,
    cos = new Float32Array(maxPos * half),
    sin = new Float32Array(maxPos * half);
  if (invFreq && invFreq.length !== half)
    throw shapeError("ropeTable", [invFreq.length], `${half} inverse frequencies`);
  const f = Float64Array.from({ length: half }, (_, i) => invFreq?.[i] ?? Math.pow(theta, (-2 * i) / headDim));
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const ang = p * f[i]!;
      cos[p * half + i] = Math.cos(ang);
      sin[p * half + i] = Math.sin(ang);
    }
  }
  return { cos, sin, maxPos, headDim };
}

/** x (N, H, D) rotated at positions pos (N). */
export function rope(x: Tensor, pos: Int32Array, table: RopeTable): Tensor {
  const [N, H, D] = x.shape as [number, number, number];
  if (x.shape.length !== 3 || D !== table.headDim || pos.length !== N) {
    throw shapeError("rope", x.shape, `(N, H, ${table.headDim}) with ${pos.length} positions`);
  }
  for (let i = 0; i < N; i++) {
    if (!(pos[i]! >= 0 && pos[i]! < table.maxPos))
      throw new FrugalError(
        "CONTEXT",
        `rope: position ${pos[i]} is past the context length ${table.maxPos}; shorten the input or raise max_position_embeddings`,
      );
  }
  const out = output(x.shape, tracks(x));
  K().rope(x.dev, out.dev, pos, table.cos, table.sin, N, H, D, 0);
  if (out.requiresGrad) record(() => K().rope(out.gdev, x.gdev, pos, table.cos, table.sin, N, H, D, 1));
  return done("rope", out);
}

/** Causal self-attention with grouped KV heads: q (B,T,H,D), k/v (B,T,KVH,D) → (B,T,H,D). */
export function attention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const [B, T, H, D] = q.shape as [number, number, number, number];
  const KVH = k.shape[2]!;
  if (
    q.shape.length !== 4 ||
    k.shape.length !== 4 ||
    k.shape[0] !== B ||
    k.shape[1] !== T ||
    k.shape[3] !== D ||
    H % KVH !== 0
  ) {
    throw shapeError(
      "attention",
      `q [${q.shape.join(", ")}], k [${k.shape.join(", ")}]`,
      "q (B,T,H,D) and k (B,T,KVH,D) with H a multiple of KVH",
    );
  }
  sameShape("attention(k, v)", k, v);
  const scale = 1 / Math.sqrt(D);
  const out = output(q.shape, tracks(q, k, v)),
    ks = K();
  // kept for the backward: each row's max and 1/Σ exp (B,H,T,2) where the kernel set rebuilds P, else P (B,H,T,T)
  const rebuilds = ks.attnFwdStats !== undefined && ks.attnBwdStats !== undefined,
    fwd = (rebuilds ? ks.attnFwdStats! : ks.attnFwd).bind(ks),
    bwd = (rebuilds ? ks.attnBwdStats! : ks.attnBwd).bind(ks);
  const saved = output([B, H, T, rebuilds ? 2 : T], false);
  fwd(q.dev, k.dev, v.dev, out.dev, saved.dev, B, T, H, KVH, D, scale);
  if (out.requiresGrad) {
    record(() => bwd(out.gdev, q.dev, k.dev, v.dev, saved.dev, q.gdev, k.gdev, v.gdev, B, T, H, KVH, D, scale));
  }
  return done("attention", out);
}

/**
 * Attention of new queries q (B,Tn,H,D) against a KV cache (slots,Tmax,KVH,D): row b uses cache slot
 * slot[b] and sits at positions pos[b]..pos[b]+Tn−1. Inference only, no gradient.
 */
export function attentionCached(
  q: Tensor,
  kCache: KV,
  vCache: KV,
  pos: Int32Array,
  slot: Int32Array,
  KVH: number,
  Tmax: number,
): Tensor {
  const [B, Tn, H, D] = q.shape as [number, number, number, number];
  const slots = kCache.length / (Tmax * KVH * D);
  for (let b = 0; b < B; b++) {
    if (pos[b]! + Tn > Tmax)
      throw new FrugalError(
        "CONTEXT",
        `attention: sequence ${b} would reach position ${pos[b]! + Tn}, past the context length ${Tmax}`,
      );
    if (!(slot[b]! >= 0 && slot[b]! < slots))
      throw new FrugalError("INDEX", `attention: slot ${slot[b]} outside the cache's ${slots} slots`);
  }
  const out = output(q.shape, false);
  K().attnCached(q.dev, kCache, vCache, out.dev, pos, slot, B, Tn, H, KVH, D, Tmax, 1 / Math.sqrt(D));
  return done("attentionCached", out);
}

/** One decoder block's weights, (out, in) like linear(); biases only where the model has them. */
export interface BlockWeights {
  ln1: Tensor;
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  bq?: Tensor;
  bk?: Tensor;
  bv?: Tensor;
  wo: Tensor;
  ln2: Tensor;
  wg: Tensor;
  wu: Tensor;
  wd: Tensor;
  /** bfloat16 bits of the seven projections: decoding reads these instead (half the bytes) */
  half?: Record<"wq" | "wk" | "wv" | "wo" | "wg" | "wu" | "wd", Uint16Array>;
  /**
   * a merged ensemble's members (n, hidden, heads, kvHeads, intermediate): the projections read their n diagonal
   * blocks only (linearBlocks), from the float32 weights; empty or absent: dense
   */
  groups?: Int32Array;
}
const none = new Float32Array(0),
  dense = new Int32Array(0);

/**
 * Inference only: one whole decoder block for N sequences decoding one token each, x (N, C) → (N, C),
 * against a KV cache (slots, Tmax, KVH, D) that it fills at (slot[b], pos[b]). The same math as rmsnorm →
 * linear → rope → attentionCached → linear → add → rmsnorm → swiglu MLP → add, in one kernel call.
 */
export function decodeBlock(
  x: Tensor,
  w: BlockWeights,
  table: RopeTable,
  kCache: KV,
  vCache: KV,
  pos: Int32Array,
  slot: Int32Array,
  Tmax: number,
  H: number,
  KVH: number,
  eps: number,
): Tensor {
  const [N, C] = x.shape as [number, number],
    D = table.headDim,
    F = w.wg.shape[0]!;
  if (x.shape.length !== 2 || pos.length !== N || slot.length !== N)
    throw shapeError("decodeBlock", x.shape, `(N, C) with N = ${pos.length} positions and slots`);
  if (tracks(x)) throw internal("decodeBlock has no backward; call it under noGrad()");
  const slots = kCache.length / (Tmax * KVH * D);
  for (let b = 0; b < N; b++) {
    if (!(pos[b]! >= 0 && pos[b]! < Math.min(Tmax, table.maxPos)))
      throw new FrugalError(
        "CONTEXT",
        `decodeBlock: sequence ${b} at position ${pos[b]} is past the context length ${Math.min(Tmax, table.maxPos)}`,
      );
    if (!(slot[b]! >= 0 && slot[b]! < slots))
      throw new FrugalError("INDEX", `decodeBlock: slot ${slot[b]} outside the cache's ${slots} slots`);
  }
  const out = output([N, C], false);
  K().axpy(1, x.dev, fillZero(out.dev));
  const groups = w.groups ?? dense,
    rest = [table.cos, table.sin, kCache, vCache, pos, slot, N, C, H, KVH, D, F, Tmax, eps, groups] as const;
  const bq = w.bq?.dev ?? none,
    bk = w.bk?.dev ?? none,
    bv = w.bv?.dev ?? none,
    h = groups.length ? undefined : w.half;
  if (h)
    K().decodeBlockHalf(out.dev, w.ln1.dev, h.wq, h.wk, h.wv, bq, bk, bv, h.wo, w.ln2.dev, h.wg, h.wu, h.wd, ...rest);
  else
    K().decodeBlock(
      out.dev,
      w.ln1.dev,
      w.wq.dev,
      w.wk.dev,
      w.wv.dev,
      bq,
      bk,
      bv,
      w.wo.dev,
      w.ln2.dev,
      w.wg.dev,
      w.wu.dev,
      w.wd.dev,
      ...rest,
    );
  return done("decodeBlock", out);
}

/** silu(g) ⊙ u, the gate of a SwiGLU MLP. */
export function swiglu(g: Tensor, u: Tensor): Tensor {
  sameShape("swiglu", g, u);
  const out = output(g.shape, tracks(g, u));
  K().swigluFwd(g.dev, u.dev, out.dev);
  if (out.requiresGrad) record(() => K().swigluBwd(out.gdev, g.dev, u.dev, g.gdev, u.gdev));
  return done("swiglu", out);
}

function checkTargets(op: string, logits: Tensor, targets: Int32Array): [number, number] {
  const V = lastDim(logits),
    N = logits.size / V;
  if (targets.length !== N)
    throw shapeError(op, `${targets.length} targets for logits [${logits.shape.join(", ")}]`, `${N} targets`);
  for (let i = 0; i < N; i++) {
    if (!(targets[i]! >= 0 && targets[i]! < V))
      throw new FrugalError("INDEX", `${op}: target ${targets[i]} at row ${i} is outside the vocabulary [0, ${V})`);
  }
  return [N, V];
}

/** Per-row log-probability of the given tokens, log softmax(logits)[target]: (N, V) → (N). */
export function logprobs(logits: Tensor, targets: Int32Array): Tensor {
  const [N, V] = checkTargets("logprobs", logits, targets);
  const out = output([N], tracks(logits));
  const lse = output([N], false);
  K().logsoftmaxGather(logits.dev, targets, out.dev, lse.dev, N, V);
  assertFinite("logprobs", "log-probabilities", out.data);
  if (out.requiresGrad)
    record(() => K().logsoftmaxGatherBwd(logits.dev, lse.dev, targets, out.gdev, logits.gdev, N, V));
  return out;
}

/** Σ −mask·logp and Σ mask over rows (mask weights rows; default all ones); a mask selecting nothing is an error. */
export function maskedNegSum(op: string, logp: Float32Array, mask?: Float32Array): { total: number; weight: number } {
  let total = 0,
    weight = 0;
  for (let i = 0; i < logp.length; i++) {
    const m = mask ? mask[i]! : 1;
    total -= m * logp[i]!;
    weight += m;
  }
  if (weight <= 0)
    throw new FrugalError("EMPTY", `${op}: the loss mask selects no tokens; check the chat template's loss mask`);
  return { total, weight };
}

/** Mean of −log p(target) over rows whose mask is non-zero (mask weights rows; default all ones). */
export function crossEntropy(logits: Tensor, targets: Int32Array, mask?: Float32Array): Tensor {
  const [N, V] = checkTargets("crossEntropy", logits, targets);
  if (mask && mask.length !== N) throw shapeError("crossEntropy", `mask of ${mask.length}`, `a mask of ${N} values`);
  const logp = output([N], false),
    lse = output([N], false);
  K().logsoftmaxGather(logits.dev, targets, logp.dev, lse.dev, N, V);
  const { total, weight } = maskedNegSum("crossEntropy", logp.data, mask);
  const out = output([1], tracks(logits));
  out.data[0] = total / weight;
  assertFinite("crossEntropy", "loss", out.data);
  if (out.requiresGrad) {
    record(() => {
      const g = out.grad[0]!,
        dlogp = output([N], false).data;
      for (let i = 0; i < N; i++) dlogp[i] = (-g * (mask ? mask[i]! : 1)) / weight;
      K().logsoftmaxGatherBwd(logits.dev, lse.dev, targets, dlogp, logits.gdev, N, V);
    });
  }
  return out;
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameShape("add", a, b);
  const out = output(a.shape, tracks(a, b));
  K().add(a.dev, b.dev, out.dev);
  if (out.requiresGrad)
    record(() => {
      if (a.requiresGrad) K().axpy(1, out.gdev, a.gdev);
      if (b.requiresGrad) K().axpy(1, out.gdev, b.gdev);
    });
  return done("add", out);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape("mul", a, b);
  const out = output(a.shape, tracks(a, b));
  K().mul(a.dev, b.dev, out.dev);
  if (out.requiresGrad)
    record(() => {
      const tmp = output(a.shape, false).dev;
      if (a.requiresGrad) {
        K().mul(out.gdev, b.dev, tmp);
        K().axpy(1, tmp, a.gdev);
      }
      if (b.requiresGrad) {
        K().mul(out.gdev, a.dev, tmp);
        K().axpy(1, tmp, b.gdev);
      }
    });
  return done("mul", out);
}

export function scale(a: Tensor, s: number): Tensor {
  const out = output(a.shape, tracks(a));
  K().axpy(s, a.dev, fillZero(out.dev));
  if (out.requiresGrad) record(() => K().axpy(s, out.gdev, a.gdev));
  return done("scale", out);
}

/**
 * A scalar computed by plain TS from x's values, with its gradient given by the same function:
 * how RL losses (GRPO and variants) sit on top of per-token log-probs without new kernels.
 */
export function scalarFn(x: Tensor, fn: (x: Float32Array) => { value: number; grad: Float32Array }): Tensor {
  const { value, grad } = fn(x.data);
  if (grad.length !== x.size) throw shapeError("scalarFn", [grad.length], `a gradient of ${x.size} values`);
  const out = output([1], tracks(x));
  out.data[0] = value;
  assertFinite("scalarFn", "value", out.data);
  if (out.requiresGrad) record(() => K().axpy(out.grad[0]!, grad, x.gdev));
  return out;
}

/** Wraps an Int-free constant array as a tensor (inputs to tests and losses). */
export function tensor(shape: readonly number[], values: ArrayLike<number>): Tensor {
  return constant(shape, Float32Array.from(values));
}
