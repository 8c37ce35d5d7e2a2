// What the guard's English members (word-guard.ts, sentence-guard.ts) share: their SwiGLU input layer,
// parameters from a list of names and shapes (drawn, saved, loaded and checked), P(unsafe) from (safe, unsafe)
// logits, the training loop over drawn batches and the forecast's step timing. No features and no heads here.
import { FrugalError } from "../common/errors.js";
import { Rng, randn } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { encodeSafetensors, readSafetensors } from "../model/safetensors.js";
import { lrAt } from "../train/batch.js";
import { runLoop, type LoopOutcome, type StageIO } from "../train/loop.js";

/** Each parameter's name and shape; matrices are (out, in), biases (out). */
export type Shapes = [string, number[]][];

/** The members' input layer: a SwiGLU of `I` inputs into `H` units (its parameters, first in every member). */
export const swigluShapes = (H: number, I: number): Shapes => [
  ["gate", [H, I]],
  ["gate_bias", [H]],
  ["up", [H, I]],
  ["up_bias", [H]],
];

/** (N, H) = swiglu(x·gateᵀ + gate_bias, x·upᵀ + up_bias) for x (N, I). */
export function swigluIn(x: Tensor, params: Map<string, Tensor>): Tensor {
  const P = (n: string) => params.get(n)!;
  return E.swiglu(E.addBias(E.linear(x, P("gate")), P("gate_bias")), E.addBias(E.linear(x, P("up")), P("up_bias")));
}

/** Matrices drawn from N(0, 1/in), biases zero. */
export function initParams(shapes: Shapes, seed: number): Map<string, Tensor> {
  const rng = new Rng(seed);
  return new Map(
    shapes.map(([name, [out, inF]]) => [
      name,
      inF === undefined ? E.param([out!]) : E.param([out!, inF], randn(rng, out! * inF, 1 / Math.sqrt(inF))),
    ]),
  );
}

export function encodeParams(params: Map<string, Tensor>, meta: Record<string, string>): Buffer {
  return encodeSafetensors(new Map([...params].map(([n, t]) => [n, { shape: t.shape, data: t.data }])), meta);
}

/** The parameters `shapes` lists, read from a safetensors file; a missing or misshapen one fails naming it. */
export function loadParams(file: string, shapes: Shapes, shapeOf: string): Map<string, Tensor> {
  const got = readSafetensors(file).tensors;
  return new Map(
    shapes.map(([name, shape]) => {
      const r = got.get(name);
      if (!r || r.shape.join() !== shape.join())
        throw new FrugalError(
          "GUARD",
          `${file}: ${name} should have shape [${shape.join(", ")}] for ${shapeOf}, found ${r ? `[${r.shape.join(", ")}]` : "nothing"}; the settings differ from the ones it was trained with`,
        );
      return [name, E.param(shape, r.data)] as const;
    }),
  );
}

/** P(unsafe) of each row of (B, 2) logits (safe, unsafe), without gradients. */
export function pUnsafeOf(logits: () => Tensor): number[] {
  const out: number[] = [];
  E.noGrad(() => {
    const z = logits().data;
    for (let b = 0; b * 2 < z.length; b++) out.push(1 / (1 + Math.exp(z[b * 2]! - z[b * 2 + 1]!)));
    E.endStep();
  });
  return out;
}

/** One training batch: its (B, 2) logits, labels (1 = unsafe) and the tokens it read (for the bill). */
export type MemberBatch = { logits: Tensor; labels: Int32Array; tokens: number };

/**
 * `steps` AdamW steps on batch(step, rng) (rng seeded per step, so a step's batch does not depend on the ones
 * before), warm-up 30 steps, decay to a tenth; progress and metrics in io.dir, no checkpoint (a member trains in
 * well under a minute, so a crash retrains it).
 */
export function trainMember(
  io: StageIO,
  params: Map<string, Tensor>,
  cfg: { steps: number; lr: number },
  batch: (rng: Rng) => MemberBatch,
): LoopOutcome {
  const opt = E.adamwInit(params),
    ac: E.AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradClip: 1 },
    nParams = [...params.values()].reduce((a, t) => a + t.size, 0);
  return runLoop(
    io,
    0,
    cfg.steps,
    (step) => {
      const b = batch(new Rng(io.seed * 1_000_003 + step)),
        loss = E.crossEntropy(b.logits, b.labels);
      const value = loss.item();
      E.backward(loss);
      E.endStep();
      const lr = lrAt(step, cfg.steps, cfg.lr, 30, 0.1),
        gradNorm = E.adamwUpdate(params, opt, ac, lr);
      return {
        metrics: { loss: value, lr, gradNorm },
        usage: { promptTokens: 0, generatedTokens: 0, trainedTokens: b.tokens, flops: 6 * nParams * b.tokens },
      };
    },
    () => {},
  );
}

/** Seconds per training step of a member (the forecast): one warm-up step, then the mean of `steps`. */
export function timeMemberStep(params: Map<string, Tensor>, logits: () => Tensor, labels: Int32Array, steps: number) {
  const opt = E.adamwInit(params);
  const step = () => {
    const loss = E.crossEntropy(logits(), labels);
    E.backward(loss);
    E.endStep();
    E.adamwUpdate(params, opt, E.defaultAdamW, 1e-3);
  };
  step();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) step();
  return (performance.now() - t0) / 1000 / steps;
}
