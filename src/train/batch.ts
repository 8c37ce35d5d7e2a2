// Turns token sequences (+ per-token loss masks) into padded (B, T) batches of inputs, next-token targets
// and a loss mask, cut into chunks of like length shared between MPI ranks, and runs forward+backward on them.
// Right padding: causal attention means pads never influence real positions, and their mask is 0.
import { FrugalError } from "../common/errors.js";
import { world, type World } from "../engine/dist.js";
import * as E from "../engine/index.js";
import { trainFlops } from "../model/flops.js";
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

/** Positions a chunk is charged beyond its own when rows are cut into chunks: a forward and backward's fixed work. */
export const CHUNK_OVERHEAD_POSITIONS = 64;

/**
 * Which rows of a batch each of `size` ranks trains, and in which chunks: rows go longest first round the ranks
 * (every rank gets as many rows, of like lengths), and each rank's rows are cut into runs that are padded only to
 * their own longest row, where the padded positions plus CHUNK_OVERHEAD_POSITIONS a chunk are least. Right
 * padding and causal attention make a row's loss the same however far it is padded. Rows of fewer than 2 tokens
 * predict nothing and are left out. A chunk holds at most `maxRows` rows (a cap on memory). Returns, per rank,
 * chunks of row indices.
 */
export function planChunks(lengths: readonly number[], maxLen: number, size: number, maxRows = Infinity): number[][][] {
  const order = lengths
    .map((_, i) => i)
    .filter((i) => lengths[i]! >= 2)
    .sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const T = (i: number) => Math.min(maxLen, lengths[i]! - 1);
  return Array.from({ length: size }, (_, rank) => {
    const rows = order.filter((_, k) => k % size === rank);
    // least[j]: the least cost of the first j rows; a chunk [i, j) pads to rows[i], the longest of them
    const least = [0],
      from = [0];
    for (let j = 1; j <= rows.length; j++) {
      least[j] = Infinity;
      for (let i = Math.max(0, j - maxRows); i < j; i++) {
        const cost = least[i]! + (j - i) * T(rows[i]!) + CHUNK_OVERHEAD_POSITIONS;
        if (cost < least[j]!) [least[j], from[j]] = [cost, i];
      }
    }
    const chunks: number[][] = [];
    for (let j = rows.length; j > 0; j = from[j]!) chunks.unshift(rows.slice(from[j]!, j));
    return chunks;
  });
}

/**
 * planChunks for sequences read whole (every position counts, not next-token pairs), in one process: batches of up
 * to `maxRows` rows of like length, each padded only to its own longest.
 */
export const wholeRowBatches = (lengths: readonly number[], maxRows = Infinity): number[][] =>
  planChunks(
    lengths.map((n) => n + 1),
    Infinity,
    1,
    maxRows,
  )[0]!;

/** Padded positions of one chunk of rows (see planChunks). */
export const chunkPositions = (rows: readonly number[], lengths: readonly number[], maxLen: number): number =>
  rows.length * Math.min(maxLen, Math.max(...rows.map((i) => lengths[i]!)) - 1);

/**
 * What one row adds to a batch, as makeBatch counts it: its loss weight (its mask over the targets it predicts)
 * and its trained tokens (the targets whose mask is not 0).
 */
export function rowTargets(
  seq: readonly number[],
  mask: readonly number[],
  maxLen: number,
): { weight: number; tokens: number } {
  let weight = 0,
    tokens = 0;
  for (let t = 1; t < seq.length && t <= maxLen; t++) {
    weight += mask[t] ?? 0;
    tokens += (mask[t] ?? 0) > 0 ? 1 : 0;
  }
  return { weight, tokens };
}

/**
 * Forward + backward of this rank's chunks of a batch of examples (planChunks): each chunk's mean is weighted by
 * its share of the batch's loss weight, so the gradients summed over ranks are those of the whole batch's mean,
 * times `scale`. Returns this rank's part of that loss, and the trained tokens, positions and FLOPs of every rank's
 * chunks.
 */
export function chunkedLossAndBackward(
  model: Model,
  ex: readonly { ids: readonly number[]; mask: readonly number[] }[],
  maxLen: number,
  pad: number,
  scale = 1,
  w: Pick<World, "rank" | "size"> = world(),
): { loss: number; tokens: number; positions: number; flops: number } {
  const lengths = ex.map((e) => e.ids.length),
    plan = planChunks(lengths, maxLen, w.size);
  let total = 0,
    tokens = 0,
    loss = 0,
    positions = 0,
    flops = 0;
  for (const e of ex) {
    const r = rowTargets(e.ids, e.mask, maxLen);
    total += r.weight;
    tokens += r.tokens;
  }
  for (const rows of plan[w.rank]!) {
    const chunk = makeBatch(
      rows.map((i) => ex[i]!.ids),
      rows.map((i) => ex[i]!.mask),
      maxLen,
      pad,
    );
    const weight = (chunk.mask.reduce((a, x) => a + x, 0) / total) * scale;
    if (weight > 0) loss += lossAndBackward(model, chunk, weight) * weight;
  }
  for (const rows of plan.flat()) {
    const P = chunkPositions(rows, lengths, maxLen);
    positions += P;
    flops += trainFlops(model.config, P, P / rows.length);
  }
  return { loss, tokens, positions, flops };
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
