// Ops that trade compute for memory, for models whose activations or vocabulary outgrow a laptop:
//  - checkpoint: a block's activations are dropped after its forward and recomputed in its backward;
//  - headLogprobs: log p(target) of h·Wᵀ a chunk of rows at a time, never holding (rows × vocab) logits.
// Both give the same numbers as the plain ops. No new kernels: they reuse gemm and the log-softmax kernels.
import { FrugalError, shapeError } from "../common/errors.js";
import { kernels } from "./backend.js";
import { assertFinite, maskedNegSum } from "./ops.js";
import {
  fillZero,
  isGradEnabled,
  onDevice,
  onGpu,
  onHost,
  noGrad,
  output,
  record,
  releaseSince,
  runTapeDownTo,
  scratch,
  scratchMark,
  tapeLength,
  Tensor,
} from "./tensor.js";

const K = () => kernels().k;

/**
 * fn(x), keeping only x and the result: fn runs without a tape, its intermediates go back to the pool, and the
 * backward runs fn again with the tape on to get x's and the parameters' gradients. fn must be deterministic.
 * Without a tape it is fn(x) with its intermediates handed back at once (a no-grad pass over many tokens).
 */
export function checkpoint(x: Tensor, fn: (x: Tensor) => Tensor): Tensor {
  const mark = scratchMark();
  if (!isGradEnabled()) {
    // nothing will read the intermediates: hand them back now rather than at the end of the step
    const y = fn(x);
    releaseSince(mark, [y.dev]);
    return y;
  }
  const y = noGrad(() => fn(x));
  releaseSince(mark, [y.dev]);
  const out = new Tensor(y.shape, y.dev, { persistent: false, requiresGrad: true });
  record(() => {
    const gx = x.requiresGrad ? x.gdev : null; // allocated before the mark: it outlives the recompute
    const m = scratchMark(),
      t0 = tapeLength();
    const xr = new Tensor(x.shape, x.dev, { persistent: false, requiresGrad: x.requiresGrad });
    const yr = fn(xr);
    if (yr.requiresGrad) {
      K().axpy(1, out.gdev, yr.gdev);
      runTapeDownTo(t0);
      if (gx) K().axpy(1, xr.gdev, gx);
    }
    releaseSince(m);
  });
  return out;
}

/** Rows of h·Wᵀ per chunk: 128 rows of a 152K vocabulary are 78 MB of logits. */
const HEAD_CHUNK_ROWS = 128;

/**
 * log p(targets[n]) under softmax(h[n]·Wᵀ) for h (N, C) and W (V, C), chunk rows at a time; the (N, V) logits
 * never exist at once. `entropy`, when given, receives the entropy of each row whose mask is set (no gradient).
 * `allowed`, when given, restricts row n's softmax to the tokens its V-long 0/1 mask allows (none: every token).
 */
export function headLogprobs(
  h: Tensor,
  W: Tensor,
  targets: Int32Array,
  entropy?: { mask: Float32Array; out: Float32Array },
  chunk = HEAD_CHUNK_ROWS,
  allowed?: readonly (Uint8Array | null | undefined)[],
): Tensor {
  const [N, C] = h.shape as [number, number],
    V = W.shape[0]!;
  if (h.shape.length !== 2 || W.shape.length !== 2 || W.shape[1] !== C || targets.length !== N)
    throw shapeError("headLogprobs", `h [${h.shape}], W [${W.shape}], ${targets.length} targets`, "(N, C), (V, C), N");
  for (let i = 0; i < N; i++)
    if (!(targets[i]! >= 0 && targets[i]! < V))
      throw new FrugalError("INDEX", `headLogprobs: target ${targets[i]} at row ${i} is outside [0, ${V})`);
  if (allowed) checkAllowed(allowed, targets, V);
  const tracks = isGradEnabled() && (h.requiresGrad || W.requiresGrad);
  const out = output([N], tracks),
    lse = output([N], false);
  const mark = scratchMark();
  forChunks(N, chunk, V, (r0, n, logits) => {
    K().gemm(0, 1, n, V, C, 1, h.dev, r0 * C, C, 0, W.dev, 0, C, 0, 0, logits, 0, V, 0, 1);
    if (allowed) maskLogits(logits, allowed, r0, n, V);
    K().logsoftmaxGather(
      logits,
      targets.subarray(r0, r0 + n),
      out.dev.subarray(r0, r0 + n),
      lse.dev.subarray(r0, r0 + n),
      n,
      V,
    );
    if (entropy) rowEntropy(onHost(logits), lse.data, r0, n, V, entropy);
  });
  releaseSince(mark);
  assertFinite("headLogprobs", "log-probabilities", out.data);
  if (tracks) record(() => headBackward(h, W, targets, lse.dev, out.gdev, chunk, allowed));
  return out;
}

function checkAllowed(allowed: readonly (Uint8Array | null | undefined)[], targets: Int32Array, V: number): void {
  if (onGpu())
    throw new FrugalError("DEVICE", "headLogprobs: masks of allowed tokens run on the CPU kernels; use --device cpu");
  if (allowed.length !== targets.length)
    throw shapeError("headLogprobs", `${allowed.length} masks`, `one mask (or none) per row: ${targets.length}`);
  allowed.forEach((m, i) => {
    if (m && m.length !== V) throw shapeError("headLogprobs", `row ${i}'s mask of ${m.length} tokens`, `${V} (V)`);
    if (m && !m[targets[i]!])
      throw new FrugalError(
        "INDEX",
        `headLogprobs: row ${i}'s mask of allowed tokens refuses its target ${targets[i]}`,
      );
  });
}

/** −∞ at the logits a row's mask refuses: the softmax is then over the allowed tokens only. */
function maskLogits(
  logits: Float32Array,
  allowed: readonly (Uint8Array | null | undefined)[],
  r0: number,
  n: number,
  V: number,
) {
  for (let r = 0; r < n; r++) {
    const m = allowed[r0 + r];
    if (m) for (let v = 0; v < V; v++) if (!m[v]) logits[r * V + v] = -Infinity;
  }
}

/** Calls body(firstRow, rows, logitsBuffer) for each chunk of rows, with one reused (chunk × V) buffer. */
function forChunks(N: number, chunk: number, V: number, body: (r0: number, n: number, logits: Float32Array) => void) {
  const buf = onDevice(scratch(Math.min(chunk, N) * V, false));
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const n = Math.min(chunk, N - r0);
    body(r0, n, buf.subarray(0, n * V));
  }
}

/** −Σ p log p of each row of a chunk, from its logits and log-sum-exp. */
function rowEntropy(
  logits: Float32Array,
  lse: Float32Array,
  r0: number,
  n: number,
  V: number,
  { mask, out }: { mask: Float32Array; out: Float32Array },
) {
  for (let r = 0; r < n; r++) {
    if (!mask[r0 + r]) continue;
    const m = lse[r0 + r]!;
    let s = 0;
    for (let v = 0; v < V; v++) {
      const lp = logits[r * V + v]! - m;
      if (lp > -Infinity) s -= Math.exp(lp) * lp; // a refused token (−∞) adds nothing
    }
    out[r0 + r] = s;
  }
}

function headBackward(
  h: Tensor,
  W: Tensor,
  targets: Int32Array,
  lse: Float32Array,
  dlogp: Float32Array,
  chunk: number,
  allowed?: readonly (Uint8Array | null | undefined)[],
) {
  const [N, C] = h.shape as [number, number],
    V = W.shape[0]!;
  const dh = h.requiresGrad ? h.gdev : null, // allocated before the mark: they outlive the chunks
    dW = W.requiresGrad ? W.gdev : null;
  const mark = scratchMark(),
    dlogits = onDevice(scratch(Math.min(chunk, N) * V, false));
  forChunks(N, chunk, V, (r0, n, logits) => {
    const d = fillZero(dlogits.subarray(0, n * V));
    K().gemm(0, 1, n, V, C, 1, h.dev, r0 * C, C, 0, W.dev, 0, C, 0, 0, logits, 0, V, 0, 1);
    if (allowed) maskLogits(logits, allowed, r0, n, V);
    K().logsoftmaxGatherBwd(
      logits,
      lse.subarray(r0, r0 + n),
      targets.subarray(r0, r0 + n),
      dlogp.subarray(r0, r0 + n),
      d,
      n,
      V,
    );
    if (dh) K().gemm(0, 0, n, C, V, 1, d, 0, V, 0, W.dev, 0, C, 0, 1, dh, r0 * C, C, 0, 1);
    if (dW) K().gemm(1, 0, V, C, n, 1, d, 0, V, 0, h.dev, r0 * C, C, 0, 1, dW, 0, C, 0, 1);
  });
  releaseSince(mark);
}

/** The mean of −logp over rows whose mask is non-zero (mask weights rows): a loss from headLogprobs. */
export function maskedMeanNeg(logp: Tensor, mask?: Float32Array): Tensor {
  const N = logp.size;
  if (mask && mask.length !== N) throw shapeError("maskedMeanNeg", `mask of ${mask.length}`, `a mask of ${N} values`);
  const { total, weight } = maskedNegSum("maskedMeanNeg", logp.data, mask);
  const out = output([1], isGradEnabled() && logp.requiresGrad);
  out.data[0] = total / weight;
  assertFinite("maskedMeanNeg", "loss", out.data);
  if (out.requiresGrad)
    record(() => {
      const g = out.grad[0]!,
        d = logp.grad;
      for (let i = 0; i < N; i++) d[i] = d[i]! - (g * (mask ? mask[i]! : 1)) / weight;
    });
  return out;
}
