// Turns token sequences (+ per-token loss masks) into a padded (B, T) batch of inputs, next-token targets
// and a loss mask, and runs one forward+backward on it. Right padding: causal attention means pads never
// influence real positions, and their mask is 0.
import { FrugalError } from "../common/errors.js";
import * as E from "../engine/index.js";
import type { Model } from "../model/transformer.js";
import { tokenLogprobs } from "../model/transformer.js";

export interface Batch {
  ids: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
  B: number;
  T: number;
  tokens: number;
}

/** seqs[i] are token ids; masks[i][t] = 1 when token t (as a prediction target) counts in the loss. */
export function makeBatch(
  seqs: readonly (readonly number[])[],
  masks: readonly (readonly number[])[],
  maxLen: number,
  pad = 0,
): Batch {
  if (seqs.length === 0) throw new FrugalError("DATA", "makeBatch: no sequences");
  const T = Math.min(maxLen, Math.max(...seqs.map((s) => s.length)) - 1);
  if (T < 1) throw new FrugalError("DATA", "makeBatch: sequences need at least 2 tokens");
  const B = seqs.length,
    ids = new Int32Array(B * T).fill(pad),
    targets = new Int32Array(B * T).fill(pad),
    mask = new Float32Array(B * T);
  let tokens = 0;
  seqs.forEach((s, b) => {
    const m = masks[b]!;
    for (let t = 0; t < T && t + 1 < s.length; t++) {
      ids[b * T + t] = s[t]!;
      targets[b * T + t] = s[t + 1]!;
      mask[b * T + t] = m[t + 1] ?? 0;
      tokens += mask[b * T + t]! > 0 ? 1 : 0;
    }
  });
  return { ids, targets, mask, B, T, tokens };
}

/** Rows [b0, b1) of a batch (views, not copies), with their own token count; T stays the batch's. */
export function sliceRows(batch: Batch, b0: number, b1: number): Batch {
  if (b0 === 0 && b1 === batch.B) return batch;
  const T = batch.T,
    mask = batch.mask.subarray(b0 * T, b1 * T);
  return {
    ids: batch.ids.subarray(b0 * T, b1 * T),
    targets: batch.targets.subarray(b0 * T, b1 * T),
    mask,
    B: b1 - b0,
    T,
    tokens: mask.reduce((a, x) => a + (x > 0 ? 1 : 0), 0),
  };
}

/** Forward + masked cross-entropy + backward (gradients add into the parameters' .grad); returns the loss. */
export function lossAndBackward(model: Model, batch: Batch, gradScale = 1): number {
  const logp = tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T);
  const loss = E.maskedMeanNeg(logp, batch.mask);
  const value = loss.item();
  E.backward(loss, gradScale);
  E.endStep();
  return value;
}

/** Learning rate at a step: linear warmup, then cosine decay to minFrac·peak. */
export function lrAt(step: number, total: number, peak: number, warmup: number, minFrac = 0.1): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const p = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minFrac + (1 - minFrac) * 0.5 * (1 + Math.cos(Math.PI * p)));
}
