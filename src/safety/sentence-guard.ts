// The guard's sentence member: a frozen pretrained sentence encoder's vector of the whole prompt
// (sentence-encoder.ts), one SwiGLU layer and two logits (safe, unsafe). Where the word member reads words, this
// one reads what a sentence asks, as an encoder trained on English text put it. It judges prompts only, trains
// on a fixed pool of drawn prompts embedded once, and does not choose the hazard. Mixing is guard.ts's.
import { z } from "zod";
import { Rng, randn } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
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
import { packagedEncoder, SENTENCE_DIMS, SentenceEncoder } from "./sentence-encoder.js";
import type { WordExample } from "./word-guard.js";

/** The guard stage's `sentenceVectors` setting. */
export const SentenceGuardConfig = z
  .object({
    /** this member's share of the guard's final P(unsafe) for prompts (the other members share the rest) */
    weight: z
      .number()
      .gt(0)
      .lt(1)
      .default(1 / 3),
    /** SwiGLU units */
    hidden: z.number().int().positive().default(256),
    /** drawn training prompts, embedded once */
    pool: z.number().int().positive().default(8000),
    steps: z.number().int().positive().default(1500),
    batchSize: z.number().int().positive().default(64),
    lr: z.number().positive().default(0.001),
  })
  .strict();
export type SentenceGuardConfig = z.infer<typeof SentenceGuardConfig>;

export const SENTENCES_FILE = "sentences.safetensors";

export class SentenceGuard {
  readonly params: Map<string, Tensor>;
  constructor(
    readonly cfg: SentenceGuardConfig,
    params?: Map<string, Tensor>,
    seed = 1,
  ) {
    this.params = params ?? SentenceGuard.init(cfg.hidden, seed);
  }

  /** Each parameter's name and shape; matrices are (out, in), biases (out). */
  static shapes(H: number): Shapes {
    return [...swigluShapes(H, SENTENCE_DIMS), ["head", [2, H]], ["head_bias", [2]]];
  }

  static init(H: number, seed: number): Map<string, Tensor> {
    return initParams(SentenceGuard.shapes(H), seed);
  }

  /** (B, 2) logits (safe, unsafe) of B sentence vectors, x (B, 512). */
  forward(x: Float32Array): Tensor {
    const P = (n: string) => this.params.get(n)!,
      h = swigluIn(E.tensor([x.length / SENTENCE_DIMS, SENTENCE_DIMS], x), this.params);
    return E.addBias(E.linear(h, P("head")), P("head_bias"));
  }

  /** P(unsafe) of each text. */
  pUnsafe(texts: readonly string[]): number[] {
    const x = SentenceEncoder.open().embed(texts);
    return pUnsafeOf(() => this.forward(x));
  }

  encode(): Buffer {
    return encodeParams(this.params, { format: "frugal-sentence-guard", encoder: packagedEncoder() ?? "unknown" });
  }

  /** A trained member from SENTENCES_FILE bytes on disk (shapes checked against `cfg`). */
  static load(file: string, cfg: SentenceGuardConfig): SentenceGuard {
    return new SentenceGuard(cfg, loadParams(file, SentenceGuard.shapes(cfg.hidden), `${cfg.hidden} units`));
  }
}

/**
 * Trains a sentence member: cfg.pool prompts from draw(rng), embedded once, then cfg.steps steps of
 * cfg.batchSize of them (progress and metrics in io.dir). A crash retrains it from the start.
 */
export function trainSentenceGuard(
  io: StageIO,
  cfg: SentenceGuardConfig,
  draw: (rng: Rng) => WordExample,
): LoopOutcome & { guard: SentenceGuard } {
  const enc = SentenceEncoder.open(),
    drawRng = new Rng(io.seed * 7919 + 17),
    pool = Array.from({ length: cfg.pool }, () => draw(drawRng)),
    vectors = enc.embed(
      pool.map((e) => e.text),
      (done, total) => io.progress(done, total, {}, `${io.name} embedding its pool`),
    );
  const guard = new SentenceGuard(cfg, undefined, io.seed);
  const out = trainMember(io, guard.params, cfg, (rng) => {
    const idx = Array.from({ length: cfg.batchSize }, () => rng.int(0, pool.length - 1)),
      x = new Float32Array(idx.length * SENTENCE_DIMS);
    idx.forEach((i, b) => x.set(vectors.subarray(i * SENTENCE_DIMS, (i + 1) * SENTENCE_DIMS), b * SENTENCE_DIMS));
    return {
      logits: guard.forward(x),
      labels: Int32Array.from(idx, (i) => (pool[i]!.unsafe ? 1 : 0)),
      tokens: idx.length,
    };
  });
  return { ...out, guard };
}

/** Seconds per training step of a member of this shape (the forecast), on random vectors: no encoder needed. */
export function timeSentenceStep(cfg: SentenceGuardConfig, steps = 5): number {
  const g = new SentenceGuard(cfg),
    x = randn(new Rng(1), cfg.batchSize * SENTENCE_DIMS);
  return timeMemberStep(
    g.params,
    () => g.forward(x),
    Int32Array.from({ length: cfg.batchSize }, (_, i) => i % 2),
    steps,
  );
}

/** Milliseconds the encoder takes per text of 16 words (a training draw's length, roughly); starts the encoder. */
export function timeSentenceEmbed(n = 64): number {
  const enc = SentenceEncoder.open(),
    rng = new Rng(Date.now() % 1_000_000),
    words = ["how", "do", "I", "make", "a", "cake", "for", "my", "friend", "without", "an", "oven", "at", "home"];
  const texts = Array.from({ length: n }, () => Array.from({ length: 16 }, () => rng.pick(words)).join(" "));
  const t0 = performance.now();
  enc.embed(texts);
  return (performance.now() - t0) / n;
}
