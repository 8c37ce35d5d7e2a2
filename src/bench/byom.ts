// `frugal bench byom --shape S`: a randomly initialised model of a real Hugging Face shape (byom-shapes.json) — a
// LoRA training step (rank 16, all linear layers, frozen base) in tokens/s, decoding at batch 1 and 16, and the
// peak resident memory; the same LoRA step in PyTorch in the same run for the ratio. Measures; asserts nothing.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { median } from "../common/stats.js";
import * as E from "../engine/index.js";
import { machineCoretype } from "../engine/backend.js";
import { countParams, parseModelConfig, type ModelConfig } from "../model/config.js";
import { addLora, LORA_MODULES, mergeLora, trainableParams } from "../model/lora.js";
import { generate } from "../model/sampler.js";
import { forward, initModel, type Model } from "../model/transformer.js";
import { findTorchPython, runTorchStep } from "./engine.js";

const SHAPES_FILE = join(dirname(fileURLToPath(import.meta.url)), "../../src/bench/byom-shapes.json");

/** The shapes `bench byom` knows, by name (HF config.json fields). */
export function byomShapes(): Map<string, ModelConfig> {
  const raw = z.record(z.string(), z.unknown()).parse(JSON.parse(readFileSync(SHAPES_FILE, "utf8")));
  return new Map(Object.entries(raw).map(([n, c]) => [n, parseModelConfig(c, `${SHAPES_FILE}: ${n}`)]));
}

export interface ByomOptions {
  shape: string;
  /** sequences × tokens of one training micro-batch */
  batch: number;
  seq: number;
  steps: number;
  newTokens: number;
  rank: number;
  torch: boolean;
}

export interface ByomBench {
  shape: string;
  params: number;
  loraParams: number;
  batch: number;
  seq: number;
  trainStepMs: number;
  trainTokensPerSec: number;
  sampleTokensPerSecBatch1: number;
  sampleTokensPerSecBatch16: number;
  peakRssMb: number;
  kernels: string;
  torchTrainTokensPerSec?: number;
  /** frugal's training tokens/s over PyTorch's on the same LoRA step */
  trainRatio?: number;
  torchVersion?: string;
  torchNote?: string;
}

const rssMb = () => process.resourceUsage().maxRSS / 1024;

/** Median wall time of LoRA training steps (forward, cross-entropy on every position, backward, AdamW). */
function timeLoraSteps(model: Model, o: ByomOptions, progress: (msg: string) => void): number {
  const rng = new Rng(3),
    V = model.config.vocab_size,
    n = o.batch * o.seq;
  const ids = Int32Array.from({ length: n }, () => rng.int(0, V - 1)),
    targets = Int32Array.from({ length: n }, () => rng.int(0, V - 1));
  const params = trainableParams(model),
    opt = E.adamwInit(params),
    times: number[] = [];
  for (let s = 0; s < o.steps + 1; s++) {
    const t0 = performance.now();
    E.backward(E.crossEntropy(forward(model, ids, o.batch, o.seq), targets));
    E.adamwUpdate(params, opt, E.defaultAdamW, 1e-4);
    E.endStep();
    const ms = performance.now() - t0;
    if (s > 0) times.push(ms); // the first step warms the pool and page-faults the weights
    progress(`train step ${s + 1}/${o.steps + 1}: ${(ms / 1000).toFixed(1)} s`);
  }
  return median(times);
}

/** Decoding tokens/s at a batch size (16-token random prompts, sampling at temperature 1). */
function sampleRate(model: Model, batch: number, newTokens: number): number {
  const rng = new Rng(5),
    prompts = Array.from({ length: batch }, () =>
      Array.from({ length: 16 }, () => rng.int(0, model.config.vocab_size - 1)),
    );
  const t0 = performance.now();
  const out = generate(
    model,
    prompts,
    prompts.map((_, i) => i),
    { maxNewTokens: newTokens, temperature: 1, batch },
  );
  return out.reduce((a, s) => a + s.tokens.length, 0) / ((performance.now() - t0) / 1000);
}

export function benchByom(o: ByomOptions, progress: (msg: string) => void = () => {}): ByomBench {
  const shapes = byomShapes(),
    config = shapes.get(o.shape);
  if (!config)
    throw new FrugalError("ARG", `--shape ${o.shape} is not known; expected one of ${[...shapes.keys()].join(", ")}`);
  progress(`initialising ${o.shape} (${(countParams(config) / 1e6).toFixed(0)}M parameters, random)`);
  const model = initModel(config, 1);
  addLora(model, { rank: o.rank, alpha: 2 * o.rank, targets: ["all-linear"] }, 2);
  const loraParams = [...trainableParams(model).values()].reduce((a, t) => a + t.size, 0);
  const trainStepMs = timeLoraSteps(model, o, progress);
  mergeLora(model); // decoding serves the merged model
  progress("decoding at batch 1 and 16");
  const out: ByomBench = {
    shape: o.shape,
    params: countParams(config),
    loraParams,
    batch: o.batch,
    seq: o.seq,
    trainStepMs,
    trainTokensPerSec: (o.batch * o.seq) / (trainStepMs / 1000),
    sampleTokensPerSecBatch1: sampleRate(model, 1, o.newTokens),
    sampleTokensPerSecBatch16: sampleRate(model, 16, o.newTokens),
    peakRssMb: rssMb(),
    kernels: E.kernels().description,
  };
  if (o.torch) torchReference(out, config, o, progress);
  return out;
}

function torchReference(out: ByomBench, config: ModelConfig, o: ByomOptions, progress: (m: string) => void): void {
  const py = findTorchPython();
  if (!py) {
    out.torchNote = "python3 with torch not found (Debian: apt-get install python3-torch); no ratio";
    return;
  }
  progress("the same LoRA step in PyTorch");
  const arg = JSON.stringify({
    ...config,
    batch: o.batch,
    seq: o.seq,
    steps: o.steps,
    warmup: 1,
    threads: Number(process.env.FRUGAL_THREADS) || 2,
    lora: { r: o.rank, alpha: 2 * o.rank, modules: LORA_MODULES },
  });
  const t = runTorchStep(py, arg, machineCoretype);
  if (typeof t === "string") {
    out.torchNote = t;
    return;
  }
  out.torchVersion = t.torch;
  out.torchTrainTokensPerSec = (o.batch * o.seq) / (t.torchStepMs / 1000);
  out.trainRatio = out.trainTokensPerSec / out.torchTrainTokensPerSec;
}
