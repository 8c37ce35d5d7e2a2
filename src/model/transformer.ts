// The transformer in the Llama/Qwen2/Qwen3 layout: embed → N × (RMSNorm → GQA attention with RoPE → residual,
// RMSNorm → SwiGLU → residual) → RMSNorm → LM head (tied or not). One definition serves training (full
// causal forward) and sampling (forward against a KV cache). Reshapes that keep what a model computes live in
// surgery.ts, the classifier's pooled reading in pooling.ts. No tokenization, no sampling policy here.
import { FrugalError, internal } from "../common/errors.js";
import { Rng, randn } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { storeBf16 } from "../engine/bf16.js";
import { adapterOf, type Lora } from "./lora.js";
import { type ModelConfig, hasQkNorm, headDim, paramShapes, ropeInvFreq } from "./config.js";
import { type Blocks, blockShape, findBlocks } from "./blocks.js";

export interface Model {
  config: ModelConfig;
  params: Map<string, Tensor>;
  rope: E.RopeTable;
  /** LoRA adapters on some projections (lora.ts); the base weights are frozen while they are attached */
  lora?: Lora;
  /** recompute each layer's activations in the backward instead of keeping them (training memory) */
  checkpointLayers?: boolean;
  /** bfloat16 bits of the projections and LM head that decoding reads (half.ts); float32 values equal them */
  half?: Map<string, Uint16Array>;
  /** a merged ensemble's block-diagonal layers (blocks.ts): projections run, and train, over their blocks only */
  blocks?: Blocks;
}

/** Fresh weights: N(0, 0.02), residual output projections scaled by 1/√(2L), norm gains at 1. */
export function initModel(config: ModelConfig, seed: number): Model {
  const rng = new Rng(seed);
  const tensors = new Map<string, Float32Array>();
  const residStd = 0.02 / Math.sqrt(2 * config.num_hidden_layers);
  for (const [name, shape] of paramShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith("norm.weight")) tensors.set(name, new Float32Array(n).fill(1));
    else if (name.endsWith(".bias")) tensors.set(name, new Float32Array(n));
    else tensors.set(name, randn(rng, n, /o_proj|down_proj/.test(name) ? residStd : 0.02));
  }
  return modelFromTensors(config, tensors, "initModel");
}

/** Builds a model from named arrays, checking that every expected tensor is there with the right size. */
export function modelFromTensors(config: ModelConfig, tensors: Map<string, Float32Array>, source: string): Model {
  const shapes = paramShapes(config);
  const params = new Map<string, Tensor>();
  for (const [name, shape] of shapes) {
    const data = tensors.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!data)
      throw new FrugalError(
        "CHECKPOINT",
        `${source}: tensor ${name} is missing (expected shape [${shape.join(", ")}])`,
      );
    if (data.length !== n)
      throw new FrugalError(
        "CHECKPOINT",
        `${source}: tensor ${name} has ${data.length} values, config.json implies [${shape.join(", ")}] = ${n}; the config does not match the weights`,
      );
    params.set(name, E.param(shape, data));
  }
  const extra = [...tensors.keys()].filter((k) => !shapes.has(k) && !k.endsWith("rotary_emb.inv_freq"));
  if (extra.length)
    throw new FrugalError(
      "CHECKPOINT",
      `${source}: unexpected tensors ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", …" : ""}; is this the Llama/Qwen2 layout?`,
    );
  const blocks = findBlocks(config, (name) => tensors.get(name)!);
  return {
    config,
    params,
    rope: E.ropeTable(config.rope_theta, headDim(config), config.max_position_embeddings, ropeInvFreq(config)),
    ...(blocks && { blocks }),
  };
}

/** A parameter by its HF name; a missing one is frugal's bug (names come from paramShapes). */
export function p(model: Model, name: string): Tensor {
  const t = model.params.get(name);
  if (!t) throw internal(`parameter ${name} missing`);
  return t;
}

type AttnFn = (q: Tensor, k: Tensor, v: Tensor) => Tensor; // (N,H,D), (N,KVH,D) → (N, H·D)

/** One layer's weights by their HF names; q/k/v biases only where the config has them (Qwen2). */
function blockWeights(model: Model, l: number): E.BlockWeights {
  const pre = `model.layers.${l}.`,
    at = pre + "self_attn.",
    bias = model.config.attention_bias;
  const w = (n: string) => p(model, pre + n + ".weight");
  return {
    ln1: w("input_layernorm"),
    wq: w("self_attn.q_proj"),
    wk: w("self_attn.k_proj"),
    wv: w("self_attn.v_proj"),
    bq: bias ? p(model, at + "q_proj.bias") : undefined,
    bk: bias ? p(model, at + "k_proj.bias") : undefined,
    bv: bias ? p(model, at + "v_proj.bias") : undefined,
    wo: w("self_attn.o_proj"),
    ln2: w("post_attention_layernorm"),
    wg: w("mlp.gate_proj"),
    wu: w("mlp.up_proj"),
    wd: w("mlp.down_proj"),
    half: model.half && halfBlock(model.half, pre),
    groups: groupsOf(runsInBlocks(model)),
  };
}

/** The blocks a merged model's projections run over: none under LoRA (its adapters are dense). */
const runsInBlocks = (model: Model): Blocks | undefined => (model.lora ? undefined : model.blocks);
const groupsOf = (b?: Blocks) => b && Int32Array.of(b.n, b.hidden, b.heads, b.kvHeads, b.intermediate);

/** The bfloat16 bits of one layer's projections, when the model decodes from them. */
function halfBlock(half: Map<string, Uint16Array>, pre: string): E.BlockWeights["half"] {
  const h = (n: string) => half.get(`${pre}${n}.weight`);
  const parts = {
    wq: h("self_attn.q_proj"),
    wk: h("self_attn.k_proj"),
    wv: h("self_attn.v_proj"),
    wo: h("self_attn.o_proj"),
    wg: h("mlp.gate_proj"),
    wu: h("mlp.up_proj"),
    wd: h("mlp.down_proj"),
  };
  return Object.values(parts).every(Boolean) ? (parts as E.BlockWeights["half"]) : undefined;
}

/** x·Wᵀ of the weight `name`, plus its bias where the layer has one and its LoRA adapter where it has one. */
function lin(model: Model, name: string, x: Tensor, bias?: Tensor): Tensor {
  let y = project(model, name, x);
  if (bias) y = E.addBias(y, bias);
  const a = adapterOf(model, name);
  // the adapter's scale goes on the rank-wide x·Aᵀ (N, r), not on the output (N, out): the same product, with the
  // scaling loop r/out as long (an eighth of a Qwen3 LoRA step went to it); alpha = 2·rank scales exactly either way
  return a ? E.add(y, E.linear(E.scale(E.linear(x, a.A), a.scale), a.B)) : y;
}

function block(model: Model, l: number, x: Tensor, pos: Int32Array, attn: AttnFn): Tensor {
  const c = model.config,
    w = blockWeights(model, l),
    N = x.shape[0]!,
    D = headDim(c),
    at = `model.layers.${l}.self_attn.`,
    mlp = `model.layers.${l}.mlp.`;
  const h = E.rmsnorm(x, w.ln1, c.rms_norm_eps);
  let q = lin(model, at + "q_proj.weight", h, w.bq).view([N, c.num_attention_heads, D]),
    k = lin(model, at + "k_proj.weight", h, w.bk).view([N, c.num_key_value_heads, D]);
  if (hasQkNorm(c)) {
    // Qwen3: RMSNorm over each head's D values (rows of the (N·heads, D) view)
    q = E.rmsnorm(q, p(model, at + "q_norm.weight"), c.rms_norm_eps);
    k = E.rmsnorm(k, p(model, at + "k_norm.weight"), c.rms_norm_eps);
  }
  q = E.rope(q, pos, model.rope);
  k = E.rope(k, pos, model.rope);
  const v = lin(model, at + "v_proj.weight", h, w.bv).view([N, c.num_key_value_heads, D]);
  const x2 = E.add(x, lin(model, at + "o_proj.weight", attn(q, k, v)));
  const h2 = E.rmsnorm(x2, w.ln2, c.rms_norm_eps);
  const g = E.swiglu(lin(model, mlp + "gate_proj.weight", h2), lin(model, mlp + "up_proj.weight", h2));
  return E.add(x2, lin(model, mlp + "down_proj.weight", g));
}

function headName(model: Model): string {
  return model.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
}

/** The final norm and the LM head: hidden states (N, C) → logits (N, V). */
export function head(model: Model, x: Tensor): Tensor {
  return project(model, headName(model), finalNorm(model, x));
}

/**
 * x·Wᵀ of the weight `name`: from its bfloat16 bits when the model has them and W gets no gradient (decoding, or a
 * frozen bf16 base under LoRA, whose gradient then reaches x only).
 */
function project(model: Model, name: string, x: Tensor): Tensor {
  const W = p(model, name),
    blocks = runsInBlocks(model),
    b = blocks && blockShape(blocks, headDim(model.config), name.replace(layerPrefix, ""));
  // a block-diagonal layer reads a third or less of its weight: less than the bfloat16 copy of all of it
  if (b) return E.linearBlocks(x, W, blocks!.n, b[0], b[1]);
  const half = E.isGradEnabled() && W.requiresGrad ? undefined : model.half?.get(name);
  return half ? E.linearHalf(x, half, W.shape[0]!) : E.linear(x, W);
}
const layerPrefix = /^model\.layers\.\d+\./;

function finalNorm(model: Model, x: Tensor): Tensor {
  return E.rmsnorm(x, p(model, "model.norm.weight"), model.config.rms_norm_eps);
}

/**
 * log p(target) at each of B·T positions (ids and targets row-major (B, T)), without the (B·T, V) logits: the
 * LM head runs in row chunks. What training and RL need from a large-vocabulary model; `entropy` and `allowed`
 * (per-row masks of the tokens the softmax is over) as headLogprobs; `temperature` divides the logits (the
 * distribution a sampler at that temperature draws from).
 */
export function tokenLogprobs(
  model: Model,
  ids: Int32Array,
  targets: Int32Array,
  B: number,
  T: number,
  entropy?: { mask: Float32Array; out: Float32Array },
  allowed?: readonly (Uint8Array | null | undefined)[],
  temperature = 1,
): Tensor {
  const normed = finalNorm(model, trunk(model, ids, B, T, "tokenLogprobs"));
  const h = temperature === 1 ? normed : E.scale(normed, 1 / temperature); // (h/τ)·Wᵀ = logits/τ
  return E.headLogprobs(h, p(model, headName(model)), targets, entropy, undefined, allowed);
}

/** The blocks over B sequences of T tokens (ids row-major (B, T)) → final hidden states (B·T, C), before the norm. */
export function trunk(model: Model, ids: Int32Array, B: number, T: number, op: string): Tensor {
  const c = model.config;
  if (ids.length !== B * T)
    throw new FrugalError("SHAPE", `${op}: expected ${B}×${T} = ${B * T} token ids, got ${ids.length}`);
  if (T > c.max_position_embeddings)
    throw new FrugalError(
      "CONTEXT",
      `${op}: sequence length ${T} exceeds max_position_embeddings ${c.max_position_embeddings}`,
    );
  const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
  let x = E.embedding(p(model, "model.embed_tokens.weight"), ids);
  const D = headDim(c);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const layer = (xi: Tensor) =>
      block(model, l, xi, pos, (q, k, v) =>
        E.attention(
          q.view([B, T, c.num_attention_heads, D]),
          k.view([B, T, c.num_key_value_heads, D]),
          v.view([B, T, c.num_key_value_heads, D]),
        ).view([B * T, c.num_attention_heads * D]),
      );
    // without a tape each layer's intermediates are freed as it ends; with checkpointing they are recomputed
    x = model.checkpointLayers || !E.isGradEnabled() ? E.checkpoint(x, layer) : layer(x);
  }
  return x;
}

/** Full causal forward over B sequences of T tokens (ids row-major (B, T)) → logits (B·T, V). */
export function forward(model: Model, ids: Int32Array, B: number, T: number): Tensor {
  return head(model, trunk(model, ids, B, T, "forward"));
}

/**
 * Per-layer key/value caches: `slots` sequences of up to Tmax positions each (persistent memory), in float32 or,
 * with `bf16`, as bfloat16 bits: half the bytes, each key and value rounded to nearest even as it is stored.
 * On a GPU kernel set they live on the device between tokens: read one on the host through E.onHost(cache.k[l]).
 */
export class KVCache {
  readonly k: (Float32Array | Uint16Array)[];
  readonly v: (Float32Array | Uint16Array)[];
  /** Entries one sequence of Tmax positions takes in one layer's keys (and as many in its values). */
  static slotFloats(config: ModelConfig, Tmax: number): number {
    return Tmax * config.num_key_value_heads * headDim(config);
  }
  constructor(
    readonly config: ModelConfig,
    readonly slots: number,
    readonly Tmax: number,
    readonly bf16 = false,
  ) {
    if (Tmax > config.max_position_embeddings)
      throw new FrugalError(
        "CONTEXT",
        `KV cache of ${Tmax} positions exceeds max_position_embeddings ${config.max_position_embeddings}`,
      );
    const n = slots * KVCache.slotFloats(config, Tmax);
    const make = () => (bf16 ? new Uint16Array(n) : new Float32Array(n));
    this.k = Array.from({ length: config.num_hidden_layers }, make);
    this.v = Array.from({ length: config.num_hidden_layers }, make);
  }
}

/**
 * Forward of Tn new tokens per sequence (ids (B, Tn)); row b lives in cache slot slot[b] at positions
 * pos[b].., which it fills. Returns logits (B·Tn, V), or each row's last position only (B, V) when
 * lastOnly. No gradients. Decoding (Tn = 1) runs each block as one fused kernel call unless fused is
 * false (the op-by-op path: the benchmark's reference and the tests' cross-check).
 */
export function forwardCached(
  model: Model,
  cache: KVCache,
  ids: Int32Array,
  pos: Int32Array,
  slot: Int32Array,
  Tn: number,
  lastOnly: boolean,
  fused = true,
): Tensor {
  return E.noGrad(() => {
    const c = model.config,
      B = pos.length,
      D = headDim(c),
      KVH = c.num_key_value_heads,
      row = KVH * D;
    if (ids.length !== B * Tn)
      throw new FrugalError("SHAPE", `forwardCached: expected ${B}×${Tn} ids, got ${ids.length}`);
    if (slot.length !== B) throw new FrugalError("SHAPE", `forwardCached: ${B} positions but ${slot.length} slots`);
    const positions = new Int32Array(B * Tn);
    for (let b = 0; b < B; b++) {
      if (pos[b]! + Tn > cache.Tmax)
        throw new FrugalError(
          "CONTEXT",
          `sequence ${b} would reach position ${pos[b]! + Tn}, past the context of ${cache.Tmax}; shorten the prompt or max_tokens`,
        );
      for (let t = 0; t < Tn; t++) positions[b * Tn + t] = pos[b]! + t;
    }
    let x = E.embedding(p(model, "model.embed_tokens.weight"), ids);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      if (Tn === 1 && fused && !hasQkNorm(c) && !model.lora) {
        // decoding: the whole block in one kernel call
        x = E.decodeBlock(
          x,
          blockWeights(model, l),
          model.rope,
          E.onDevice(cache.k[l]!),
          E.onDevice(cache.v[l]!),
          pos,
          slot,
          cache.Tmax,
          c.num_attention_heads,
          KVH,
          c.rms_norm_eps,
        );
        continue;
      }
      x = E.checkpoint(x, (xi) =>
        block(model, l, xi, positions, (q, k, v) => {
          // the host writes the new keys and values: a GPU copy comes home first
          const kc = E.onHost(cache.k[l]!),
            vc = E.onHost(cache.v[l]!);
          for (let b = 0; b < B; b++) {
            const dst = (slot[b]! * cache.Tmax + pos[b]!) * row,
              src = b * Tn * row;
            if (kc instanceof Uint16Array) {
              storeBf16(kc, k.data.subarray(src, src + Tn * row), dst);
              storeBf16(vc as Uint16Array, v.data.subarray(src, src + Tn * row), dst);
            } else {
              kc.set(k.data.subarray(src, src + Tn * row), dst);
              (vc as Float32Array).set(v.data.subarray(src, src + Tn * row), dst);
            }
          }
          return E.attentionCached(q.view([B, Tn, c.num_attention_heads, D]), kc, vc, pos, slot, KVH, cache.Tmax).view([
            B * Tn,
            c.num_attention_heads * D,
          ]);
        }),
      );
    }
    if (lastOnly && Tn > 1) {
      const C = c.hidden_size,
        last = E.output([B, C], false);
      for (let b = 0; b < B; b++) last.data.set(x.data.subarray(((b + 1) * Tn - 1) * C, (b + 1) * Tn * C), b * C);
      x = last;
    }
    return head(model, x);
  });
}
