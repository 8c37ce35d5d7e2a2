// The classifier's reading of a sequence (the guard): final hidden states pooled over each sequence's positions
// (mean, per-channel max, or both), then the final norm and the LM head, so a label is a vocabulary token.
// No training or thresholds here (safety/guard.ts).
import { FrugalError } from "../common/errors.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { type Model, head, trunk } from "./transformer.js";

/** How forwardPooled reads a sequence: the mean of its positions, the per-channel max, or their sum. */
export const POOLINGS = ["mean", "max", "mean+max"] as const;
export type Pooling = (typeof POOLINGS)[number];

/**
 * Sequence classification reading: the final hidden states of each sequence's first lengths[b] positions
 * pooled (mean, per-channel max, or both added), then the final norm and the LM head → logits (B, V).
 * A label is then a token of the vocabulary (the guard's <|safe|>, <|S1|>, …). Max pooling is built from
 * existing ops: a constant one-hot mask of each channel's arg-max (so its gradient goes to that position
 * only) times the states, summed per sequence by a matmul.
 */
export function forwardPooled(
  model: Model,
  ids: Int32Array,
  B: number,
  T: number,
  lengths: Int32Array,
  pooling: Pooling = "mean",
): Tensor {
  if (lengths.length !== B)
    throw new FrugalError("SHAPE", `forwardPooled: expected ${B} lengths, got ${lengths.length}`);
  for (let b = 0; b < B; b++) {
    const n = lengths[b]!;
    if (!(n >= 1 && n <= T))
      throw new FrugalError("SHAPE", `forwardPooled: length ${n} of sequence ${b} is outside 1..${T}`);
  }
  const x = trunk(model, ids, B, T, "forwardPooled"); // (B·T, C)
  const mean = pooling === "max" ? null : E.matmul(E.tensor([B, B * T], poolMatrix(lengths, T, true)), x);
  const max =
    pooling === "mean"
      ? null
      : E.matmul(
          E.tensor([B, B * T], poolMatrix(lengths, T, false)),
          E.mul(x, E.tensor(x.shape, argmaxMask(x.data, lengths, T, x.shape[1]!))),
        );
  return head(model, mean && max ? E.add(mean, max) : (mean ?? max)!);
}

/** (B, B·T): row b sums (or averages) positions 0..lengths[b]-1 of sequence b. */
export function poolMatrix(lengths: Int32Array, T: number, average: boolean): Float32Array {
  const B = lengths.length,
    m = new Float32Array(B * B * T);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < lengths[b]!; t++) m[b * B * T + b * T + t] = average ? 1 / lengths[b]! : 1;
  return m;
}

/** (B·T, C) with a 1 at each sequence's arg-max position per channel (first one on ties), else 0. */
export function argmaxMask(x: Float32Array, lengths: Int32Array, T: number, C: number): Float32Array {
  const mask = new Float32Array(x.length);
  for (let b = 0; b < lengths.length; b++) {
    for (let c = 0; c < C; c++) {
      let best = b * T * C + c;
      for (let t = 1; t < lengths[b]!; t++) {
        const i = (b * T + t) * C + c;
        if (x[i]! > x[best]!) best = i;
      }
      mask[best] = 1;
    }
  }
  return mask;
}
