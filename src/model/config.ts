// Model configuration under Hugging Face config.json names (Llama / Qwen2 / Mistral layout), validated.
// Reading a real HF config keeps the fields we use and ignores the rest (dtype, token ids, ...), but
// refuses features this model does not implement (other activations, rope scaling, sliding windows).
import { z } from "zod";
import { FrugalError } from "../common/errors.js";

export const ModelConfigSchema = z.object({
  model_type: z.enum(["llama", "qwen2", "mistral"]).default("llama"),
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
  return c.hidden_size / c.num_attention_heads;
}

/** Validates a config object (ours or a Hugging Face config.json); `source` names the file in errors. */
export function parseModelConfig(raw: unknown, source = "config"): ModelConfig {
  if (typeof raw !== "object" || raw === null) throw new FrugalError("CONFIG", `${source}: expected a JSON object`);
  const r = { ...(raw as Record<string, unknown>) };
  const arch = Array.isArray(r.architectures) ? String(r.architectures[0]) : undefined;
  if (r.model_type !== undefined && !["llama", "qwen2", "mistral"].includes(String(r.model_type))) {
    throw new FrugalError(
      "ARCH",
      `${source}: model_type "${String(r.model_type)}" is not supported; frugal loads the Llama layout (model_type llama, qwen2 or mistral)` +
        (arch ? ` and this is ${arch}` : ""),
    );
  }
  if (r.hidden_act !== undefined && r.hidden_act !== "silu")
    throw new FrugalError(
      "ARCH",
      `${source}: hidden_act "${String(r.hidden_act)}" is not supported (only silu / SwiGLU)`,
    );
  if (r.rope_scaling)
    throw new FrugalError("ARCH", `${source}: rope_scaling is not supported; remove it or use a model without it`);
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
  if (c.hidden_size % c.num_attention_heads)
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
