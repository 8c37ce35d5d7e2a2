// Checkpoint directories in the Hugging Face layout: config.json + model.safetensors (+ tokenizer.json, PEFT adapters),
// plus frugal.json (stage, step, stage config, RNG state) and optimizer.safetensors. A save builds the
// whole directory beside the target and swaps it in, so a crash or full disk leaves the previous
// checkpoint valid; a load only reads, and names the file and field that is wrong.
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { FrugalError, internal } from "../common/errors.js";
import { onHost, type AdamWState } from "../engine/index.js";
import { ARCHITECTURES, parseModelConfig, type ModelConfig } from "./config.js";
import { encodeSafetensors, readSafetensors } from "./safetensors.js";
import { writeFileAtomic } from "../common/files.js";
import { type Model, modelFromTensors } from "./transformer.js";
import { attachPeft, peftFiles, trainableParams } from "./lora.js";

export interface FrugalMeta {
  format: "frugal-checkpoint";
  version: 1;
  stage: string;
  step: number;
  /** The stage's final, validated config. */
  config: unknown;
  rngState?: number[];
  createdAt: string;
  [extra: string]: unknown;
}

export interface Checkpoint {
  model: Model;
  meta: FrugalMeta | null;
  tokenizer: unknown | null;
  dir: string;
}

const ARCH = Object.fromEntries(Object.entries(ARCHITECTURES).map(([arch, type]) => [type, arch]));

export interface SaveOptions {
  meta?: Omit<FrugalMeta, "format" | "version" | "createdAt">;
  tokenizer?: unknown;
  /** a Hugging Face model's tokenizer_config.json (its chat template), kept with every checkpoint */
  tokenizerConfig?: unknown;
  optimizer?: AdamWState;
  /** further files written into the same atomic directory (e.g. GRPO's reference policy) */
  extraFiles?: Record<string, string | Uint8Array>;
}

/** A model's parameters as safetensors bytes (model.safetensors, or a second model saved beside it). */
export function encodeWeights(model: Model): Buffer {
  // weights kept in bfloat16 only (a bf16 base under LoRA) are written as BF16, their exact values
  return encodeSafetensors(
    new Map([...model.params].map(([n, t]) => [n, { shape: t.shape, data: t.bf16 ?? t.data }])),
    {
      format: "pt",
    },
  );
}

/** A model of this config from a weights file written by encodeWeights (names and shapes checked). */
export function readWeights(config: ModelConfig, file: string): Model {
  return modelFromTensors(config, new Map([...readSafetensors(file).tensors].map(([n, t]) => [n, t.data])), file);
}

/**
 * The weight files of a directory: model.safetensors, or the shards its model.safetensors.index.json lists, each
 * checked to exist (nothing is read but the index).
 */
export function weightFiles(dir: string): string[] {
  const single = join(dir, "model.safetensors"),
    index = join(dir, "model.safetensors.index.json");
  if (existsSync(single)) return [single];
  if (!existsSync(index))
    throw new FrugalError(
      "CHECKPOINT",
      `${dir}: no model.safetensors and no model.safetensors.index.json; expected the weights beside config.json`,
    );
  const map = (readJson(index) as { weight_map?: unknown }).weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new FrugalError("CHECKPOINT", `${index}: expected a "weight_map" object of tensor name → shard file`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>).map(String))];
  const missing = shards.filter((f) => !existsSync(join(dir, f)));
  if (missing.length)
    throw new FrugalError(
      "CHECKPOINT",
      `${dir}: shard${missing.length > 1 ? "s" : ""} ${missing.join(", ")} listed in model.safetensors.index.json ` +
        `${missing.length > 1 ? "are" : "is"} missing; download the whole model directory again`,
    );
  return shards.map((f) => join(dir, f));
}

function readDirWeights(config: ModelConfig, dir: string): Model {
  const files = weightFiles(dir);
  if (files.length === 1) return readWeights(config, files[0]!);
  const tensors = new Map<string, Float32Array>();
  for (const f of files) for (const [n, t] of readSafetensors(f).tensors) tensors.set(n, t.data);
  return modelFromTensors(config, tensors, join(dir, "model.safetensors.index.json"));
}

/**
 * The one way a checkpoint directory changes: `build` fills a fresh directory beside `dir` (starting as a copy
 * of it when `keep`), which then replaces `dir` by two renames. A crash or full disk at any point leaves a
 * complete checkpoint: the previous one, or (between the renames) its .old copy, which loadCheckpoint reads.
 */
function swapDirectory(dir: string, keep: boolean, build: (tmp: string) => void): void {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`),
    old = join(dirname(dir), `.${basename(dir)}.old`);
  rmSync(tmp, { recursive: true, force: true });
  if (keep) cpSync(dir, tmp, { recursive: true });
  else mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/** Adds (or replaces) files in an existing checkpoint through the same atomic swap as a save. */
export function addCheckpointFiles(dir: string, files: Record<string, string | Uint8Array>): void {
  if (!existsSync(join(dir, "config.json"))) throw internal(`addCheckpointFiles: ${dir} is not a checkpoint`);
  swapDirectory(dir, true, (tmp) => {
    for (const [name, data] of Object.entries(files)) writeFileAtomic(join(tmp, name), data);
  });
}

export function saveCheckpoint(dir: string, model: Model, opts: SaveOptions): void {
  swapDirectory(dir, false, (tmp) => {
    const c = model.config;
    writeFileAtomic(
      join(tmp, "config.json"),
      JSON.stringify(
        { architectures: [ARCH[c.model_type]], ...c, hidden_act: "silu", torch_dtype: "float32" },
        null,
        2,
      ),
    );
    writeFileAtomic(join(tmp, "model.safetensors"), encodeWeights(model));
    if (model.lora) {
      // the frozen base is model.safetensors beside it, hence base_model_name_or_path "."
      const peft = peftFiles(model, ".");
      writeFileAtomic(join(tmp, "adapter_config.json"), JSON.stringify(peft.config, null, 2));
      writeFileAtomic(join(tmp, "adapter_model.safetensors"), encodeSafetensors(peft.tensors, { format: "pt" }));
    }
    if (opts.tokenizer !== undefined) writeFileAtomic(join(tmp, "tokenizer.json"), JSON.stringify(opts.tokenizer));
    if (opts.tokenizerConfig !== undefined)
      writeFileAtomic(join(tmp, "tokenizer_config.json"), JSON.stringify(opts.tokenizerConfig, null, 2));
    if (opts.meta)
      writeFileAtomic(
        join(tmp, "frugal.json"),
        JSON.stringify(
          { format: "frugal-checkpoint", version: 1, createdAt: new Date().toISOString(), ...opts.meta },
          null,
          2,
        ),
      );
    if (opts.optimizer) {
      const o = new Map<string, { shape: readonly number[]; data: Float32Array }>();
      for (const [n, m] of opts.optimizer.m) o.set(`m.${n}`, { shape: [m.length], data: onHost(m) });
      for (const [n, v] of opts.optimizer.v) o.set(`v.${n}`, { shape: [v.length], data: onHost(v) });
      writeFileAtomic(join(tmp, "optimizer.safetensors"), encodeSafetensors(o, { step: String(opts.optimizer.step) }));
    }
    for (const [name, data] of Object.entries(opts.extraFiles ?? {})) writeFileAtomic(join(tmp, name), data);
  });
}

export function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new FrugalError("CHECKPOINT", `cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FrugalError("CHECKPOINT", `${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Loads a frugal checkpoint or a Hugging Face Llama / Qwen2 / Qwen3 directory (one file or sharded). */
export function loadCheckpoint(dir: string): Checkpoint {
  // a crash between the two renames of a save leaves only the .old copy: use it (read-only)
  const old = join(dirname(dir), `.${basename(dir)}.old`);
  if (!existsSync(dir) && existsSync(old)) dir = old;
  if (!existsSync(join(dir, "config.json")) && existsSync(join(dir, "adapter_config.json"))) return loadAdapterDir(dir);
  if (!existsSync(join(dir, "config.json"))) {
    throw new FrugalError(
      "CHECKPOINT",
      `${dir}: no config.json; expected a model directory (config.json + model.safetensors), e.g. a stage output under runs/`,
    );
  }
  const config = parseModelConfig(readJson(join(dir, "config.json")), join(dir, "config.json"));
  const model = readDirWeights(config, dir);
  if (existsSync(join(dir, "adapter_config.json"))) attachAdapters(model, dir);
  const metaFile = join(dir, "frugal.json");
  const meta = existsSync(metaFile) ? (readJson(metaFile) as FrugalMeta) : null;
  if (meta && meta.format !== "frugal-checkpoint")
    throw new FrugalError(
      "CHECKPOINT",
      `${metaFile}: format is "${String(meta.format)}", expected "frugal-checkpoint"`,
    );
  const tokFile = join(dir, "tokenizer.json");
  return { model, meta, tokenizer: existsSync(tokFile) ? readJson(tokFile) : null, dir };
}

function attachAdapters(model: Model, dir: string): void {
  const file = join(dir, "adapter_model.safetensors");
  if (!existsSync(file))
    throw new FrugalError("LORA", `${dir}: adapter_config.json without adapter_model.safetensors; copy both files`);
  attachPeft(model, readJson(join(dir, "adapter_config.json")), readSafetensors(file).tensors, dir);
}

/** A PEFT adapter directory on its own: the base model named by base_model_name_or_path (a local path), plus it. */
function loadAdapterDir(dir: string): Checkpoint {
  const base = (readJson(join(dir, "adapter_config.json")) as { base_model_name_or_path?: unknown })
    .base_model_name_or_path;
  const baseDir = typeof base === "string" ? resolve(dir, base) : "";
  if (!baseDir || !existsSync(join(baseDir, "config.json")))
    throw new FrugalError(
      "LORA",
      `${dir}: adapter_config.json's base_model_name_or_path "${String(base)}" is not a local model directory; ` +
        "set it to the base model's path (absolute, or relative to the adapter directory)",
    );
  const ck = loadCheckpoint(baseDir);
  attachAdapters(ck.model, dir);
  return { ...ck, meta: null, dir };
}

/** Reads optimizer.safetensors back into AdamW state for a model with these parameters. */
export function loadOptimizer(dir: string, model: Model): AdamWState | null {
  const file = join(dir, "optimizer.safetensors");
  if (!existsSync(file)) return null;
  const st = readSafetensors(file);
  const m = new Map<string, Float32Array>(),
    v = new Map<string, Float32Array>();
  for (const [name, p] of trainableParams(model)) {
    const mt = st.tensors.get(`m.${name}`),
      vt = st.tensors.get(`v.${name}`);
    if (!mt || !vt || mt.data.length !== p.size || vt.data.length !== p.size)
      throw new FrugalError("CHECKPOINT", `${file}: optimizer state for ${name} is missing or the wrong size`);
    m.set(name, mt.data);
    v.set(name, vt.data);
  }
  return { step: Number(st.metadata.step ?? 0), m, v };
}
