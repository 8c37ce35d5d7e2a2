// Model configuration under Hugging Face config.json names (Llama 3 / Qwen2 / Qwen3 / Mistral layout), validated.
// Reading a real HF config keeps the fields we use and ignores the rest (dtype, token ids, ...), but
// refuses features this model does not implement (other activations, other rope scalings, sliding windows).
import { z } from "zod";
import { FrugalError } from "../common/errors.js";

/** Llama 3's rope_scaling: long wavelengths slowed by `factor`, a smooth blend between the two cut-offs. */
const Llama3RopeSchema = z.object({
  rope_type: z.literal("llama3"),
  factor: z.number().positive(),
  low_freq_factor: z.number().positive(),
  high_freq_factor: z.number().positive(),
  original_max_position_embeddings: z.number().int().positive(),
});

/** The architectures frugal runs, by config.json's `architectures[0]`, with their model_type. */
export const ARCHITECTURES = {
  LlamaForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  MistralForCausalLM: "mistral",
} as const;
const MODEL_TYPES = ["llama", "qwen2", "qwen3", "mistral"] as const;

export const ModelConfigSchema = z.object({
  model_type: z.enum(MODEL_TYPES).default("llama"),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  vocab_size: z.number().int().positive(),
  max_position_embeddings: z.number().int().positive(),
  rope_theta: z.number().positive().default(10000),
  rms_norm_eps: z.number().positive().default(1e-5),
  tie_word_embeddings: z.boolean().default(false),
  /** Qwen2 puts biases on q/k/v projections; Llama has none. */
  attention_bias: z.boolean().default(false),
  /** Per-head width when it is not hidden_size / heads (Qwen3, Llama 3.2). */
  head_dim: z.number().int().positive().optional(),
  rope_scaling: Llama3RopeSchema.optional(),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** The engine benchmark's reference configuration (≈3.4M parameters). */
export const referenceConfig: ModelConfig = {
  model_type: "llama",
  hidden_size: 256,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  intermediate_size: 768,
  vocab_size: 64,
  max_position_embeddings: 512,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  attention_bias: false,
};

export function headDim(c: ModelConfig): number {
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/** Qwen3 normalises each query and key head (RMSNorm over head_dim) before RoPE. */
export function hasQkNorm(c: ModelConfig): boolean {
  return c.model_type === "qwen3";
}

/** RoPE's inverse frequencies θ^(−2i/D), i < D/2, with Llama 3's scaling applied when the config has it. */
export function ropeInvFreq(c: ModelConfig): Float64Array {
  const D = headDim(c),
    inv = Float64Array.from({ length: D / 2 }, (_, i) => Math.pow(c.rope_theta, (-2 * i) / D));
  const s = c.rope_scaling;
  if (!s) return inv;
  const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor,
    highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth =
      (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** config.json's rope_scaling: null/absent, or Llama 3's (older files spell rope_type as type). */
function readRopeScaling(raw: unknown, source: string): unknown {
  if (raw === undefined || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === "default") return undefined;
  if (type !== "llama3")
    throw new FrugalError(
      "ARCH",
      `${source}: rope_scaling type "${String(type)}" is not supported; frugal implements "llama3" only ` +
        "(use a model without rope_scaling, or one with Llama 3's)",
    );
  const { type: _t, ...rest } = r;
  return { ...rest, rope_type: "llama3" };
}

/** Validates a config object (ours or a Hugging Face config.json); `source` names the file in errors. */
export function parseModelConfig(raw: unknown, source = "config"): ModelConfig {
  if (typeof raw !== "object" || raw === null) throw new FrugalError("CONFIG", `${source}: expected a JSON object`);
  const r = { ...(raw as Record<string, unknown>) };
  const arch = Array.isArray(r.architectures) ? String(r.architectures[0]) : undefined;
  const supported = Object.keys(ARCHITECTURES).join(", ");
  if (arch !== undefined && !(arch in ARCHITECTURES))
    throw new FrugalError("ARCH", `${source}: architecture ${arch} is not supported; frugal runs ${supported}`);
  if (r.model_type !== undefined && !(MODEL_TYPES as readonly string[]).includes(String(r.model_type))) {
    throw new FrugalError(
      "ARCH",
      `${source}: model_type "${String(r.model_type)}" is not supported; frugal runs ${supported} ` +
        `(model_type ${MODEL_TYPES.join(", ")})`,
    );
  }
  if (r.hidden_act !== undefined && r.hidden_act !== "silu")
    throw new FrugalError(
      "ARCH",
      `${source}: hidden_act "${String(r.hidden_act)}" is not supported (only silu / SwiGLU)`,
    );
  r.rope_scaling = readRopeScaling(r.rope_scaling, source);
  if (r.mlp_bias === true) throw new FrugalError("ARCH", `${source}: MLP biases (mlp_bias) are not supported`);
  if (r.use_sliding_window === true)
    throw new FrugalError("ARCH", `${source}: sliding-window attention is not supported`);
  if (r.model_type === "qwen2" && r.attention_bias === undefined) r.attention_bias = true;
  if (r.num_key_value_heads === undefined) r.num_key_value_heads = r.num_attention_heads;
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(ModelConfigSchema.shape)) if (r[k] !== undefined && r[k] !== null) picked[k] = r[k];
  const p = ModelConfigSchema.safeParse(picked);
  if (!p.success) {
    const issues = p.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new FrugalError("CONFIG", `${source}: ${issues}`);
  }
  const c = p.data;
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads)
    throw new FrugalError(
      "CONFIG",
      `${source}: hidden_size ${c.hidden_size} must be divisible by num_attention_heads ${c.num_attention_heads}`,
    );
  if (c.num_attention_heads % c.num_key_value_heads)
    throw new FrugalError(
      "CONFIG",
      `${source}: num_attention_heads ${c.num_attention_heads} must be a multiple of num_key_value_heads ${c.num_key_value_heads}`,
    );
  if (headDim(c) % 2) throw new FrugalError("CONFIG", `${source}: head dim ${headDim(c)} must be even for RoPE`);
  return c;
}

/** Tensor names and shapes of a model, in Hugging Face naming. */
export function paramShapes(c: ModelConfig): Map<string, number[]> {
  const C = c.hidden_size,
    D = headDim(c),
    H = c.num_attention_heads,
    KVH = c.num_key_value_heads,
    I = c.intermediate_size;
  const m = new Map<string, number[]>();
  m.set("model.embed_tokens.weight", [c.vocab_size, C]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + "input_layernorm.weight", [C]);
    m.set(p + "self_attn.q_proj.weight", [H * D, C]);
    m.set(p + "self_attn.k_proj.weight", [KVH * D, C]);
    m.set(p + "self_attn.v_proj.weight", [KVH * D, C]);
    if (c.attention_bias) {
      m.set(p + "self_attn.q_proj.bias", [H * D]);
      m.set(p + "self_attn.k_proj.bias", [KVH * D]);
      m.set(p + "self_attn.v_proj.bias", [KVH * D]);
    }
    if (hasQkNorm(c)) {
      m.set(p + "self_attn.q_norm.weight", [D]);
      m.set(p + "self_attn.k_norm.weight", [D]);
    }
    m.set(p + "self_attn.o_proj.weight", [C, H * D]);
    m.set(p + "post_attention_layernorm.weight", [C]);
    m.set(p + "mlp.gate_proj.weight", [I, C]);
    m.set(p + "mlp.up_proj.weight", [I, C]);
    m.set(p + "mlp.down_proj.weight", [C, I]);
  }
  m.set("model.norm.weight", [C]);
  if (!c.tie_word_embeddings) m.set("lm_head.weight", [c.vocab_size, C]);
  return m;
}

export function countParams(c: ModelConfig): number {
  let n = 0;
  for (const s of paramShapes(c).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}
