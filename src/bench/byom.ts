// `frugal bench byom --shape S`: a randomly initialised model of a real Hugging Face shape (byom-shapes.json) runs
// one LoRA GRPO step (rank 16, every linear layer, frozen base, per-layer checkpointing, chunked LM head): its
// time, training tokens/s and peak resident memory; decoding (bf16 matrices) at batch 1 and 16; the same LoRA
// micro-batch in PyTorch, and batch-1 decoding by llama.cpp of the same weights as GGUF, in the same run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import { machineCoretype } from "../engine/backend.js";
import { countParams, parseModelConfig, type ModelConfig } from "../model/config.js";
import { addLora, LORA_MODULES, mergeLora, trainableParams } from "../model/lora.js";
import { generate } from "../model/sampler.js";
import { initModel, tokenLogprobs, type Model } from "../model/transformer.js";
import { keepBaseInBf16, useBf16Decoding } from "../model/half.js";
import v8 from "node:v8";
import vm from "node:vm";
import { exportGguf } from "../serve/gguf.js";
import { CharTokenizer } from "../tokenizer/tokenizer.js";
import { findTorchPython, runTorchStep } from "./engine.js";
import { llamaGreedy } from "./llama.js";

const SHAPES_FILE = join(dirname(fileURLToPath(import.meta.url)), "../../src/bench/byom-shapes.json");

/** The shapes `bench byom` knows, by name (HF config.json fields). */
export function byomShapes(): Map<string, ModelConfig> {
  const raw = z.record(z.string(), z.unknown()).parse(JSON.parse(readFileSync(SHAPES_FILE, "utf8")));
  return new Map(Object.entries(raw).map(([n, c]) => [n, parseModelConfig(c, `${SHAPES_FILE}: ${n}`)]));
}

export interface ByomOptions {
  shape: string;
  /** the GRPO step: prompts × samples completions of newTokens tokens after a promptTokens-token prompt */
  prompts: number;
  samples: number;
  newTokens: number;
  promptTokens: number;
  /** sequences per forward/backward of the update */
  micro: number;
  rank: number;
  /** the rollouts' KV cache in bfloat16 (a GRPO stage's kvCacheBf16) */
  kvBf16: boolean;
  /** the frozen base's projections in bfloat16 only (a LoRA stage's bf16Base) */
  bf16Base: boolean;
  torch: boolean;
  llamaCpp: boolean;
}

export interface ByomBench {
  shape: string;
  params: number;
  loraParams: number;
  /** one LoRA GRPO step: sampling, then the old policy's log-probs and the update */
  grpoStepS: number;
  /** the rollouts' KV cache: "bf16" or "f32" */
  kvCache: string;
  /** the frozen projections during the step: "bf16" (bf16Base) or "f32" */
  base: string;
  grpoSampleS: number;
  grpoUpdateS: number;
  /** peak resident memory up to the end of the GRPO step (before the bf16 decoding copies) */
  grpoPeakRssMb: number;
  sequences: number;
  seqTokens: number;
  micro: number;
  /** positions per second of the update's forward + backward */
  trainTokensPerSec: number;
  sampleTokensPerSecBatch1: number;
  sampleTokensPerSecBatch16: number;
  peakRssMb: number;
  kernels: string;
  torchTrainTokensPerSec?: number;
  /** frugal's training tokens/s over PyTorch's on the same LoRA micro-batch */
  trainRatio?: number;
  torchVersion?: string;
  torchNote?: string;
  /** batch-1 greedy decoding, bf16 weights: frugal vs llama.cpp on the same BF16 GGUF (and on an F16 one) */
  llamaCpp?: {
    threads: number;
    frugalTokensPerSec: number;
    llamaCppTokensPerSec: number;
    llamaCppF16TokensPerSec: number;
    sameTokens: boolean;
  };
  llamaCppNote?: string;
}

/** Sequences GRPO decodes at once (rl/grpo.ts's rollout). */
const GRPO_SAMPLE_BATCH = 32;
const seconds = (t0: number) => (performance.now() - t0) / 1000;
/** Peak resident memory since the last resetPeak (Linux: VmHWM), else since the process started. */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** Collects garbage and restarts the peak (Linux), so a step's peak is its own, not the model's initialisation. */
function resetPeak(): void {
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    /* the peak then counts from the process start */
  }
}
const gib = (mb: number) => (mb / 1024).toFixed(2);

function randomPrompts(rng: Rng, n: number, len: number, V: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: len }, () => rng.int(0, V - 1)));
}

/** Decoding tokens/s at a batch size (16-token random prompts, sampling at temperature 1). */
function sampleRate(model: Model, batch: number, newTokens: number): number {
  const prompts = randomPrompts(new Rng(5), batch, 16, model.config.vocab_size);
  const t0 = performance.now();
  const out = generate(
    model,
    prompts,
    prompts.map((_, i) => i),
    { maxNewTokens: newTokens, temperature: 1, batch },
  );
  return out.reduce((a, s) => a + s.tokens.length, 0) / seconds(t0);
}

/** The sampled sequences, each cut or padded to T + 1 tokens (inputs and shifted targets). */
function sampledSequences(model: Model, o: ByomOptions, T: number): number[][] {
  const prompts = randomPrompts(new Rng(3), o.prompts, o.promptTokens, model.config.vocab_size).flatMap((p) =>
    Array.from({ length: o.samples }, () => p),
  );
  const samples = generate(
    model,
    prompts,
    prompts.map((_, i) => i),
    { maxNewTokens: o.newTokens, temperature: 1, batch: GRPO_SAMPLE_BATCH, kvBf16: o.kvBf16 },
  );
  return samples.map((s, i) => {
    const seq = [...prompts[i]!, ...s.tokens].slice(0, T + 1);
    while (seq.length < T + 1) seq.push(0);
    return seq;
  });
}

/**
 * One GRPO step's work with LoRA: sample prompts × samples completions (adapters attached), then per micro-batch
 * the old policy's log-probs without gradients and a forward + backward, then AdamW on the adapters.
 */
function grpoStep(model: Model, o: ByomOptions, progress: (msg: string) => void) {
  const T = o.promptTokens + o.newTokens - 1;
  progress(`sampling ${o.prompts} prompts × ${o.samples} samples × ${o.newTokens} tokens`);
  let t0 = performance.now();
  const seqs = sampledSequences(model, o, T);
  const sampleS = seconds(t0);
  progress(`old-policy log-probs and the update, ${o.micro} sequences at a time`);
  const params = trainableParams(model),
    opt = E.adamwInit(params);
  t0 = performance.now();
  let trainS = 0;
  for (let b0 = 0; b0 < seqs.length; b0 += o.micro) {
    const rows = seqs.slice(b0, b0 + o.micro),
      B = rows.length;
    const ids = Int32Array.from(rows.flatMap((r) => r.slice(0, T))),
      targets = Int32Array.from(rows.flatMap((r) => r.slice(1)));
    E.noGrad(() => tokenLogprobs(model, ids, targets, B, T));
    E.endStep();
    const t1 = performance.now();
    E.backward(E.maskedMeanNeg(tokenLogprobs(model, ids, targets, B, T)));
    E.endStep();
    trainS += seconds(t1);
  }
  E.adamwUpdate(params, opt, E.defaultAdamW, 1e-5);
  return { sampleS, updateS: seconds(t0), trainS, seqTokens: T, sequences: seqs.length };
}

/**
 * Batch-1 greedy decoding of the merged model, its matrices in bfloat16: frugal against llama.cpp on the same
 * weights as BF16 GGUF (same numbers, so the same tokens are expected), and llama.cpp on an F16 export for
 * its usual 16-bit speed; llama.cpp gets as many threads as frugal.
 */
async function vsLlamaCpp(out: ByomBench, model: Model, newTokens: number, progress: (m: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), "frugal-byom-")),
    threads = Number(process.env.FRUGAL_THREADS) || 2;
  try {
    const tok = CharTokenizer.fromChars("abcdefghijklmnopqrstuvwxyz"); // ids only: the vocabulary is padded to the rows
    const prompt = randomPrompts(new Rng(9), 1, 16, model.config.vocab_size)[0]!;
    progress(`decoding ${newTokens} tokens at batch 1 (frugal, bf16 weights)`);
    const t0 = performance.now();
    const ours = generate(model, [prompt], [0], { maxNewTokens: newTokens, temperature: 0 })[0]!.tokens;
    const oursS = seconds(t0);
    const rate = async (dtype: "bf16" | "f16") => {
      progress(`exporting ${dtype.toUpperCase()} GGUF; llama.cpp decodes it (${threads} threads)`);
      const file = join(dir, `model-${dtype}.gguf`);
      exportGguf(model, tok, file, out.shape, dtype);
      const r = await llamaGreedy(file, prompt, newTokens, undefined, threads);
      rmSync(file);
      return r;
    };
    const bf16 = await rate("bf16"),
      f16 = await rate("f16");
    out.llamaCpp = {
      threads,
      frugalTokensPerSec: ours.length / oursS,
      llamaCppTokensPerSec: bf16.tokens.length / bf16.seconds,
      llamaCppF16TokensPerSec: f16.tokens.length / f16.seconds,
      sameTokens: JSON.stringify(ours) === JSON.stringify(bf16.tokens),
    };
  } catch (e) {
    out.llamaCppNote = `llama.cpp comparison failed: ${(e as Error).message.slice(0, 300)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchByom(o: ByomOptions, report: (msg: string) => void = () => {}): Promise<ByomBench> {
  const progress = (m: string) =>
    report(`${m} (resident ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB, peak ${gib(peakRssMb())} GiB)`);
  const shapes = byomShapes(),
    config = shapes.get(o.shape);
  if (!config)
    throw new FrugalError("ARG", `--shape ${o.shape} is not known; expected one of ${[...shapes.keys()].join(", ")}`);
  progress(`initialising ${o.shape} (${(countParams(config) / 1e6).toFixed(0)}M parameters, random)`);
  const model = initModel(config, 1);
  addLora(model, { rank: o.rank, alpha: 2 * o.rank, targets: ["all-linear"] }, 2);
  if (o.bf16Base) keepBaseInBf16(model);
  model.checkpointLayers = true;
  resetPeak();
  const loraParams = [...trainableParams(model).values()].reduce((a, t) => a + t.size, 0);
  const g = grpoStep(model, o, progress),
    grpoPeakRssMb = peakRssMb();
  mergeLora(model); // decoding as served: the merged model, its matrices in bfloat16
  useBf16Decoding(model);
  progress("decoding at batch 1 and 16");
  const out: ByomBench = {
    shape: o.shape,
    params: countParams(config),
    loraParams,
    grpoStepS: g.sampleS + g.updateS,
    kvCache: o.kvBf16 ? "bf16" : "f32",
    base: o.bf16Base ? "bf16" : "f32",
    grpoSampleS: g.sampleS,
    grpoUpdateS: g.updateS,
    grpoPeakRssMb,
    sequences: g.sequences,
    seqTokens: g.seqTokens,
    micro: o.micro,
    trainTokensPerSec: (g.sequences * g.seqTokens) / g.trainS,
    sampleTokensPerSecBatch1: sampleRate(model, 1, 32),
    sampleTokensPerSecBatch16: sampleRate(model, 16, 32),
    peakRssMb: peakRssMb(),
    kernels: E.kernels().description,
  };
  if (o.torch) torchReference(out, config, o, progress);
  if (o.llamaCpp) await vsLlamaCpp(out, model, 32, progress);
  return out;
}

function torchReference(out: ByomBench, config: ModelConfig, o: ByomOptions, progress: (m: string) => void): void {
  const py = findTorchPython();
  if (!py) {
    out.torchNote = "python3 with torch not found (Debian: apt-get install python3-torch); no ratio";
    return;
  }
  progress("the same LoRA micro-batch step in PyTorch");
  const arg = JSON.stringify({
    ...config,
    batch: o.micro,
    seq: out.seqTokens,
    steps: 2,
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
  out.torchTrainTokensPerSec = (o.micro * out.seqTokens) / (t.torchStepMs / 1000);
  out.trainRatio = out.trainTokensPerSec / out.torchTrainTokensPerSec;
}
