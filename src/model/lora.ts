// LoRA: y = x·Wᵀ + (alpha/rank)·(x·Aᵀ)·Bᵀ on chosen linear modules, base weights frozen, only A and B trained.
// Adapters are stored in PEFT's format (adapter_config.json + adapter_model.safetensors, PEFT's tensor names) so
// PEFT loads them and frugal loads PEFT's. Merging folds them into the base weights. No rsLoRA, DoRA or dropout.
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { headDim, paramShapes, type ModelConfig } from "./config.js";
import type { Model } from "./transformer.js";

export const LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
const ALL = "all-linear";

export const LoraConfig = z
  .object({
    rank: z.number().int().positive().default(16),
    alpha: z.number().positive().default(32),
    /** module names, or ["all-linear"] (PEFT's spelling) for every projection of every layer */
    targets: z
      .array(z.enum([...LORA_MODULES, ALL]))
      .min(1)
      .default([ALL]),
  })
  .strict();
export type LoraConfig = z.infer<typeof LoraConfig>;

export interface Lora {
  rank: number;
  alpha: number;
  modules: string[];
  /** by the base weight's name (model.layers.0.self_attn.q_proj.weight): A (rank, in), B (out, rank) */
  adapters: Map<string, { A: Tensor; B: Tensor }>;
}

/** Parameters of the adapters `cfg` adds to a model of shape `c` (what a LoRA stage trains and all-reduces). */
export function loraParamCount(c: ModelConfig, cfg: LoraConfig): number {
  const hd = headDim(c),
    H = c.hidden_size,
    I = c.intermediate_size;
  const dims: Record<string, [number, number]> = {
    q_proj: [H, c.num_attention_heads * hd],
    k_proj: [H, c.num_key_value_heads * hd],
    v_proj: [H, c.num_key_value_heads * hd],
    o_proj: [c.num_attention_heads * hd, H],
    gate_proj: [H, I],
    up_proj: [H, I],
    down_proj: [I, H],
  };
  const perLayer = loraModules(cfg.targets).reduce((a, m) => a + cfg.rank * (dims[m]![0] + dims[m]![1]), 0);
  return perLayer * c.num_hidden_layers;
}

export function loraModules(targets: readonly string[]): string[] {
  return targets.includes(ALL) ? [...LORA_MODULES] : [...new Set(targets)];
}

/** The adapter of one base weight, if it has one; its scale is alpha/rank. */
export function adapterOf(model: Model, weightName: string): { A: Tensor; B: Tensor; scale: number } | undefined {
  const a = model.lora?.adapters.get(weightName);
  return a && { ...a, scale: model.lora!.alpha / model.lora!.rank };
}

/** Fresh adapters (A ~ U(±1/√in) as PEFT's kaiming init, B = 0, so the model starts unchanged); base frozen. */
export function addLora(model: Model, cfg: LoraConfig, seed: number): void {
  if (model.lora) mergeLora(model);
  const rng = new Rng(seed),
    modules = loraModules(cfg.targets),
    adapters = new Map<string, { A: Tensor; B: Tensor }>();
  for (const [name, shape] of paramShapes(model.config)) {
    if (!modules.some((m) => name.endsWith(`.${m}.weight`))) continue;
    const [out, inp] = shape as [number, number],
      bound = 1 / Math.sqrt(inp);
    const A = Float32Array.from({ length: cfg.rank * inp }, () => (rng.next() * 2 - 1) * bound);
    adapters.set(name, {
      A: E.param([cfg.rank, inp], A),
      B: E.param([out, cfg.rank], new Float32Array(out * cfg.rank)),
    });
  }
  model.lora = { rank: cfg.rank, alpha: cfg.alpha, modules, adapters };
  for (const p of model.params.values()) p.requiresGrad = false;
}

/** Folds the adapters into the base weights (W += scale·B·A) and makes every weight trainable; call between steps. */
export function mergeLora(model: Model): void {
  if (!model.lora) return;
  foldAdapters(model.lora, (name) => {
    const W = model.params.get(name)!;
    W.widen(); // a bf16-only base weight becomes float32 again: merging changes it
    model.half?.delete(name);
    return W.data;
  });
  model.lora = undefined;
  for (const p of model.params.values()) p.requiresGrad = true;
}

/** Adds scale·B·A of every adapter into the array `into(name)` gives for its base weight, one weight at a time. */
function foldAdapters(lora: Lora, into: (weightName: string) => Float32Array): void {
  const s = lora.alpha / lora.rank;
  E.noGrad(() => {
    for (const [name, { A, B }] of lora.adapters) {
      const W = into(name),
        delta = E.matmul(B, A).data;
      for (let i = 0; i < W.length; i++) W[i] = W[i]! + s * delta[i]!;
      E.endStep(); // the delta's memory back before the next one
    }
  });
}

/** Readies a model for a stage: fresh adapters when the stage uses LoRA, else earlier adapters merged in. */
export function prepareForTraining(model: Model, cfg: LoraConfig | undefined, seed: number): void {
  if (cfg) addLora(model, cfg, seed);
  else mergeLora(model);
}

/** Every weight with the adapters folded in, as fresh arrays (the model is unchanged): GRPO's reference policy. */
export function mergedTensors(model: Model): Map<string, Float32Array> {
  const out = new Map([...model.params].map(([n, t]) => [n, Float32Array.from(t.data)]));
  if (model.lora) foldAdapters(model.lora, (name) => out.get(name)!);
  return out;
}

/**
 * A frozen copy of the policy for GRPO's reference: with LoRA it shares the (frozen) base weights and copies only
 * the adapters — from `saved` (trainableParams names) when resuming. Without LoRA, null: copy the weights instead.
 */
export function adapterSnapshot(model: Model, saved?: Map<string, { data: Float32Array }>): Model | null {
  const lora = model.lora;
  if (!lora) return null;
  const adapters = new Map<string, { A: Tensor; B: Tensor }>();
  for (const [name, { A, B }] of lora.adapters) {
    const stem = pefName(name);
    const copy = (t: Tensor, key: string) => {
      const data = saved ? saved.get(key)?.data : Float32Array.from(t.data);
      if (!data || data.length !== t.size)
        throw new FrugalError("CHECKPOINT", `the saved reference adapters lack ${key} (or it has the wrong size)`);
      return E.constant(t.shape, data);
    };
    adapters.set(name, { A: copy(A, `${stem}.lora_A.weight`), B: copy(B, `${stem}.lora_B.weight`) });
  }
  return { ...model, lora: { ...lora, adapters }, checkpointLayers: false };
}

/** What the optimizer updates: the adapters under PEFT's names when the model has LoRA, else every weight. */
export function trainableParams(model: Model): Map<string, Tensor> {
  if (!model.lora) return model.params;
  const m = new Map<string, Tensor>();
  for (const [name, { A, B }] of model.lora.adapters) {
    const stem = pefName(name);
    m.set(`${stem}.lora_A.weight`, A);
    m.set(`${stem}.lora_B.weight`, B);
  }
  return m;
}

/** PEFT's tensor name stem of a base weight: base_model.model.<module path>. */
function pefName(weightName: string): string {
  return `base_model.model.${weightName.replace(/\.weight$/, "")}`;
}

/** adapter_config.json and adapter_model.safetensors tensors of a model's adapters. */
export function peftFiles(
  model: Model,
  baseModel: string,
): { config: object; tensors: Map<string, { shape: readonly number[]; data: Float32Array }> } {
  const lora = model.lora;
  if (!lora) throw new FrugalError("LORA", "the model has no LoRA adapters to save");
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModel,
    r: lora.rank,
    lora_alpha: lora.alpha,
    target_modules: lora.modules,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
  };
  const tensors = new Map<string, { shape: readonly number[]; data: Float32Array }>();
  for (const [name, t] of trainableParams(model)) tensors.set(name, { shape: t.shape, data: t.data });
  return { config, tensors };
}

const PeftConfig = z
  .object({
    peft_type: z.literal("LORA"),
    r: z.number().int().positive(),
    lora_alpha: z.number().positive(),
    target_modules: z.union([z.array(z.string()), z.string()]),
    bias: z.literal("none").default("none"),
    fan_in_fan_out: z.literal(false).default(false),
    use_rslora: z.literal(false).default(false),
    use_dora: z.literal(false).default(false),
  })
  .passthrough();

/** Attaches adapters read from PEFT files to a model (base frozen); `source` names the directory in errors. */
export function attachPeft(
  model: Model,
  rawConfig: unknown,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  source: string,
): void {
  const p = PeftConfig.safeParse(rawConfig);
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw new FrugalError(
      "LORA",
      `${source}/adapter_config.json: ${i.path.join(".") || "(root)"}: ${i.message}; frugal loads plain LoRA ` +
        "adapters (no bias training, rsLoRA or DoRA)",
    );
  }
  const c = p.data,
    targets = typeof c.target_modules === "string" ? [c.target_modules] : c.target_modules;
  const unknown = targets.filter((t) => t !== ALL && !(LORA_MODULES as readonly string[]).includes(t));
  if (unknown.length)
    throw new FrugalError(
      "LORA",
      `${source}/adapter_config.json: target module ${unknown.join(", ")} names no module of this model; ` +
        `expected ${LORA_MODULES.join(", ")} or ${ALL}`,
    );
  const adapters = new Map<string, { A: Tensor; B: Tensor }>(),
    shapes = paramShapes(model.config);
  for (const [name, shape] of shapes) {
    const stem = pefName(name),
      A = tensors.get(`${stem}.lora_A.weight`),
      B = tensors.get(`${stem}.lora_B.weight`);
    if (!A && !B) continue;
    const want = [
      [c.r, shape[1]!],
      [shape[0]!, c.r],
    ];
    if (!A || !B || A.shape.join() !== want[0]!.join() || B.shape.join() !== want[1]!.join())
      throw new FrugalError(
        "LORA",
        `${source}/adapter_model.safetensors: ${stem} needs lora_A [${want[0]}] and lora_B [${want[1]}], ` +
          `got ${A ? `[${A.shape}]` : "none"} and ${B ? `[${B.shape}]` : "none"}; the adapter belongs to another model`,
      );
    adapters.set(name, { A: E.param(A.shape, A.data), B: E.param(B.shape, B.data) });
  }
  if (adapters.size === 0)
    throw new FrugalError("LORA", `${source}/adapter_model.safetensors: no adapter matches a weight of this model`);
  model.lora = { rank: c.r, alpha: c.lora_alpha, modules: loraModules(targets), adapters };
  for (const t of model.params.values()) t.requiresGrad = false;
}
