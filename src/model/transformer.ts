// The transformer in the Llama/Qwen2 layout: embed → N × (RMSNorm → GQA attention with RoPE → residual,
// RMSNorm → SwiGLU → residual) → RMSNorm → LM head (tied or not). One definition serves training (full
// causal forward) and sampling (forward against a KV cache), and the reshapes that keep what a model computes
// (growVocab, widenModel, mergeModels, addBiasChannel). No tokenization, no sampling policy here.
import { FrugalError } from "../common/errors.js";
import { Rng, randn } from "../common/rng.js";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/index.js";
import { type ModelConfig, headDim, paramShapes } from "./config.js";

export interface Model {
  config: ModelConfig;
  params: Map<string, Tensor>;
  rope: E.RopeTable;
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
    if (!data) throw new FrugalError("CHECKPOINT", `${source}: tensor ${name} is missing (expected shape [${shape.join(", ")}])`);
    if (data.length !== n) throw new FrugalError("CHECKPOINT", `${source}: tensor ${name} has ${data.length} values, config.json implies [${shape.join(", ")}] = ${n}; the config does not match the weights`);
    params.set(name, E.param(shape, data));
  }
  const extra = [...tensors.keys()].filter((k) => !shapes.has(k) && !k.endsWith("rotary_emb.inv_freq"));
  if (extra.length) throw new FrugalError("CHECKPOINT", `${source}: unexpected tensors ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", …" : ""}; is this the Llama/Qwen2 layout?`);
  return { config, params, rope: E.ropeTable(config.rope_theta, headDim(config), config.max_position_embeddings) };
}

/**
 * The same model over a larger vocabulary whose first vocab_size ids mean what they meant (an extended
 * tokenizer): old rows are copied; new token i's embedding (and LM-head) row is the mean of the rows of
 * pieces(i), the old ids that spell it, so it starts where the model's reading of those pieces is.
 */
export function growVocab(model: Model, vocabSize: number, pieces: (id: number) => readonly number[]): Model {
  const c = model.config, C = c.hidden_size, V0 = c.vocab_size;
  if (vocabSize < V0) throw new FrugalError("CONFIG", `growVocab: the new vocabulary (${vocabSize}) is smaller than the model's (${V0})`);
  const spelled = Array.from({ length: vocabSize - V0 }, (_, k) => { // each new token's pieces, asked for once
    const ps = pieces(V0 + k);
    if (!ps.length || ps.some((q) => !(q >= 0 && q < V0))) throw new FrugalError("INTERNAL", `internal: growVocab: new token ${V0 + k} is spelled by ${JSON.stringify(ps)}, expected old ids below ${V0}`);
    return ps;
  });
  const tensors = new Map([...model.params].map(([n, t]) => [n, t.data]));
  for (const name of c.tie_word_embeddings ? ["model.embed_tokens.weight"] : ["model.embed_tokens.weight", "lm_head.weight"]) {
    const old = tensors.get(name)!, grown = new Float32Array(vocabSize * C);
    grown.set(old);
    spelled.forEach((ps, k) => { for (const q of ps) for (let j = 0; j < C; j++) grown[(V0 + k) * C + j]! += old[q * C + j]! / ps.length; });
    tensors.set(name, grown);
  }
  return modelFromTensors({ ...c, vocab_size: vocabSize }, tensors, "growVocab");
}

/** The widths widenModel grows to; each at least the model's own. */
export interface Widths { hidden_size: number; num_attention_heads: number; num_key_value_heads: number; intermediate_size: number }

/**
 * The same function in a wider model (more hidden dims, heads and MLP units), so a later stage has more
 * capacity than the base it starts from. New hidden dims start at zero in every residual write and the
 * embedding, norm gains are scaled by √(C0/C1) and eps by C0/C1 so RMSNorm of the old dims is unchanged, and every new head
 * and MLP unit writes nothing yet; new reading weights are N(0, 0.02), so gradients reach all new weights.
 * Old heads keep their key/value heads (the query-per-key/value group size must stay).
 */
export function widenModel(model: Model, to: Widths, seed: number): Model {
  const c = model.config, D = headDim(c), C0 = c.hidden_size, C1 = to.hidden_size, H0 = c.num_attention_heads, K0 = c.num_key_value_heads;
  const bad = (Object.keys(to) as (keyof Widths)[]).filter((k) => !(Number.isInteger(to[k]) && to[k] >= c[k]));
  if (bad.length) throw new FrugalError("CONFIG", `widenModel: ${bad.map((k) => `${k} ${to[k]}`).join(", ")} must be integers at least the model's (${bad.map((k) => c[k]).join(", ")}); a model can only grow`);
  if (to.num_attention_heads * D !== C1 || to.num_attention_heads % to.num_key_value_heads || to.num_attention_heads / to.num_key_value_heads !== H0 / K0) {
    throw new FrugalError("CONFIG", `widenModel: heads must keep their size ${D} (hidden_size = ${D} × num_attention_heads) and the ${H0 / K0} query heads per key/value head; got hidden_size ${C1}, ${to.num_attention_heads} heads, ${to.num_key_value_heads} key/value heads`);
  }
  const rng = new Rng(seed), I0 = c.intermediate_size, I1 = to.intermediate_size, s = Math.sqrt(C0 / C1);
  // old (r0 × c0) block at the top left of (r1 × c1); the rest: random where `fresh` says so, else zero
  const grow = (old: Float32Array, r0: number, c0: number, r1: number, c1: number, fresh: (r: number, col: number) => boolean) => {
    const out = new Float32Array(r1 * c1);
    for (let r = 0; r < r1; r++) for (let j = 0; j < c1; j++) out[r * c1 + j] = r < r0 && j < c0 ? old[r * c0 + j]! : fresh(r, j) ? 0.02 * rng.normal() : 0;
    return out;
  };
  const reads = () => true, writes = () => false, t = new Map<string, Float32Array>();
  for (const [name, param] of model.params) {
    const w = param.data, tail = name.replace(/^model\.layers\.\d+\./, "");
    if (name.endsWith("norm.weight")) t.set(name, Float32Array.from({ length: C1 }, (_, j) => (j < C0 ? w[j]! : 1) * s));
    else if (name === "model.embed_tokens.weight") t.set(name, grow(w, c.vocab_size, C0, c.vocab_size, C1, writes));
    else if (name === "lm_head.weight") t.set(name, grow(w, c.vocab_size, C0, c.vocab_size, C1, reads));
    else if (tail === "self_attn.q_proj.weight") t.set(name, grow(w, H0 * D, C0, C1, C1, reads));
    else if (/self_attn\.[kv]_proj\.weight$/.test(tail)) t.set(name, grow(w, K0 * D, C0, to.num_key_value_heads * D, C1, reads));
    else if (tail === "self_attn.q_proj.bias") t.set(name, grow(w, 1, H0 * D, 1, C1, writes));
    else if (/self_attn\.[kv]_proj\.bias$/.test(tail)) t.set(name, grow(w, 1, K0 * D, 1, to.num_key_value_heads * D, writes));
    else if (tail === "self_attn.o_proj.weight") t.set(name, grow(w, C0, H0 * D, C1, C1, writes));
    else if (/mlp\.(gate|up)_proj\.weight$/.test(tail)) t.set(name, grow(w, I0, C0, I1, C1, reads));
    else if (tail === "mlp.down_proj.weight") t.set(name, grow(w, C0, I0, C1, I1, writes));
    else throw new FrugalError("INTERNAL", `internal: widenModel does not know how to widen ${name}`);
  }
  return modelFromTensors({ ...c, ...to, rms_norm_eps: c.rms_norm_eps * s * s }, t, "widenModel"); // the same eps relative to the old dims' mean square
}

/** The shape mergeModels gives n members of shape c. */
export function mergedConfig(c: ModelConfig, n: number): ModelConfig {
  return { ...c, hidden_size: c.hidden_size * n, num_attention_heads: c.num_attention_heads * n, num_key_value_heads: c.num_key_value_heads * n, intermediate_size: c.intermediate_size * n };
}

/** The shape addBiasChannel gives a model of shape c: one more key/value head's group of heads (its eps rescaled by widenModel). */
export function biasChannelConfig(c: ModelConfig): Widths {
  const rep = c.num_attention_heads / c.num_key_value_heads;
  return { hidden_size: c.hidden_size + rep * headDim(c), num_attention_heads: c.num_attention_heads + rep, num_key_value_heads: c.num_key_value_heads + 1, intermediate_size: c.intermediate_size };
}

/**
 * n models of one shape side by side in one model n times as wide, with block-diagonal weights: each
 * member keeps its own dims, heads and MLP units, and the logits are the mean of the members' logits
 * (final norm gains / n). Exact except that every RMSNorm divides by the members' joint rms rather than
 * each member's own, which is close when the members were fine-tuned from one model; a short fine-tune
 * after the merge repairs the rest. Members must share the config (and so the tokenizer).
 */
export function mergeModels(models: readonly Model[]): Model {
  if (!models.length) throw new FrugalError("INTERNAL", "internal: mergeModels needs at least one model");
  const c = models[0]!.config, n = models.length;
  const differs = models.findIndex((m) => JSON.stringify(m.config) !== JSON.stringify(c));
  if (differs > 0) throw new FrugalError("CONFIG", `mergeModels: member ${differs} has config ${JSON.stringify(models[differs]!.config)}, expected the first member's ${JSON.stringify(c)}; members must share one shape and vocabulary`);
  const t = new Map<string, Float32Array>();
  for (const [name, param] of models[0]!.params) {
    const parts = models.map((m) => m.params.get(name)!.data), [rows, cols] = param.shape.length === 2 ? [param.shape[0]!, param.shape[1]!] : [1, param.shape[0]!];
    // vocabulary tables and vectors keep their rows (member dims side by side); weight matrices stack members diagonally
    const diagonal = rows > 1 && name !== "model.embed_tokens.weight" && name !== "lm_head.weight";
    const Ccols = cols * n, out = new Float32Array((diagonal ? rows * n : rows) * Ccols);
    parts.forEach((w, m) => {
      const r0 = diagonal ? m * rows : 0;
      for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[(r0 + r) * Ccols + m * cols + j] = w[r * cols + j]!;
    });
    if (name === "model.norm.weight") out.forEach((x, i) => { out[i] = x / n; });
    t.set(name, out);
  }
  return modelFromTensors(mergedConfig(c, n), t, "mergeModels");
}

/**
 * A logit bias inside an ordinary Llama, at the positions where the input token is `carrier` only: one
 * more group of heads' worth of dims (silent heads), of which one — the bias channel — is c in carrier's
 * embedding and 0 in every other token's, is read by no layer (its norm gains are 0) and written by none,
 * so it reaches the final norm unchanged. The LM head reads it for one token (setLogitBias): after
 * `carrier` that token's logit rises by β·c·gain / rms of the position's final state; elsewhere nothing
 * changes. c is the embedding's rms, so every norm's rms moves by under one dim's worth. Starts at β = 0.
 * Tied heads cannot carry a per-token bias.
 */
export function addBiasChannel(model: Model, carrier: number, seed: number): Model {
  const c = model.config, C0 = c.hidden_size;
  if (c.tie_word_embeddings) throw new FrugalError("CONFIG", "addBiasChannel: a tied LM head reads the bias channel for every token alike; untie the head (tie_word_embeddings: false) to give one token a bias");
  if (!(Number.isInteger(carrier) && carrier >= 0 && carrier < c.vocab_size)) throw new FrugalError("INTERNAL", `internal: addBiasChannel: carrier token ${carrier} is outside the vocabulary of ${c.vocab_size}`);
  const w = widenModel(model, biasChannelConfig(c), seed);
  const C1 = w.config.hidden_size, emb = p(w, "model.embed_tokens.weight").data;
  let ss = 0; for (let v = 0; v < c.vocab_size; v++) for (let j = 0; j < C0; j++) ss += emb[v * C1 + j]! ** 2;
  emb[carrier * C1 + C0] = Math.sqrt(ss / (c.vocab_size * C0));
  p(w, "lm_head.weight").data.forEach((_, i, head) => { if (i % C1 === C0) head[i] = 0; });
  for (const [name, t] of w.params) if (name.endsWith("layernorm.weight")) t.data[C0] = 0;
  return w;
}

/** The bias channel's index (a dim no layer norm reads and some embedding sets), or -1 when the model has none. */
export function biasChannel(model: Model): number {
  const C = model.config.hidden_size, emb = p(model, "model.embed_tokens.weight").data, norms = [...model.params].filter(([n]) => n.endsWith("layernorm.weight"));
  for (let j = 0; j < C; j++) {
    if (norms.some(([, t]) => t.data[j] !== 0)) continue;
    for (let v = 0; v < model.config.vocab_size; v++) if (emb[v * C + j] !== 0) return j;
  }
  return -1;
}

/** Sets β, the LM head's weight on the bias channel for `token`. */
export function setLogitBias(model: Model, token: number, beta: number): void {
  const j = biasChannel(model);
  if (j < 0) throw new FrugalError("INTERNAL", "internal: setLogitBias: this model has no bias channel (addBiasChannel adds one)");
  p(model, "lm_head.weight").data[token * model.config.hidden_size + j] = beta;
}

function p(model: Model, name: string): Tensor {
  const t = model.params.get(name);
  if (!t) throw new FrugalError("INTERNAL", `internal: parameter ${name} missing`);
  return t;
}

type AttnFn = (q: Tensor, k: Tensor, v: Tensor) => Tensor; // (N,H,D), (N,KVH,D) → (N, H·D)

/** One layer's weights by their HF names; q/k/v biases only where the config has them (Qwen2). */
function blockWeights(model: Model, l: number): E.BlockWeights {
  const pre = `model.layers.${l}.`, at = pre + "self_attn.", bias = model.config.attention_bias;
  const w = (n: string) => p(model, pre + n + ".weight");
  return {
    ln1: w("input_layernorm"), wq: w("self_attn.q_proj"), wk: w("self_attn.k_proj"), wv: w("self_attn.v_proj"),
    bq: bias ? p(model, at + "q_proj.bias") : undefined, bk: bias ? p(model, at + "k_proj.bias") : undefined,
    bv: bias ? p(model, at + "v_proj.bias") : undefined, wo: w("self_attn.o_proj"), ln2: w("post_attention_layernorm"),
    wg: w("mlp.gate_proj"), wu: w("mlp.up_proj"), wd: w("mlp.down_proj"),
  };
}

/** x·Wᵀ, plus the bias where the layer has one. */
function proj(x: Tensor, W: Tensor, bias?: Tensor): Tensor {
  const y = E.linear(x, W);
  return bias ? E.addBias(y, bias) : y;
}

function block(model: Model, l: number, x: Tensor, pos: Int32Array, attn: AttnFn): Tensor {
  const c = model.config, w = blockWeights(model, l), N = x.shape[0]!, D = headDim(c);
  const h = E.rmsnorm(x, w.ln1, c.rms_norm_eps);
  const q = E.rope(proj(h, w.wq, w.bq).view([N, c.num_attention_heads, D]), pos, model.rope);
  const k = E.rope(proj(h, w.wk, w.bk).view([N, c.num_key_value_heads, D]), pos, model.rope);
  const v = proj(h, w.wv, w.bv).view([N, c.num_key_value_heads, D]);
  const x2 = E.add(x, E.linear(attn(q, k, v), w.wo));
  const h2 = E.rmsnorm(x2, w.ln2, c.rms_norm_eps);
  const mlp = E.swiglu(E.linear(h2, w.wg), E.linear(h2, w.wu));
  return E.add(x2, E.linear(mlp, w.wd));
}

function head(model: Model, x: Tensor): Tensor {
  const c = model.config;
  const h = E.rmsnorm(x, p(model, "model.norm.weight"), c.rms_norm_eps);
  return E.linear(h, p(model, c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
}

/** The blocks over B sequences of T tokens (ids row-major (B, T)) → final hidden states (B·T, C), before the norm. */
function trunk(model: Model, ids: Int32Array, B: number, T: number, op: string): Tensor {
  const c = model.config;
  if (ids.length !== B * T) throw new FrugalError("SHAPE", `${op}: expected ${B}×${T} = ${B * T} token ids, got ${ids.length}`);
  if (T > c.max_position_embeddings) throw new FrugalError("CONTEXT", `${op}: sequence length ${T} exceeds max_position_embeddings ${c.max_position_embeddings}`);
  const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
  let x = E.embedding(p(model, "model.embed_tokens.weight"), ids);
  const D = headDim(c);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    x = block(model, l, x, pos, (q, k, v) =>
      E.attention(q.view([B, T, c.num_attention_heads, D]), k.view([B, T, c.num_key_value_heads, D]), v.view([B, T, c.num_key_value_heads, D]))
        .view([B * T, c.num_attention_heads * D]));
  }
  return x;
}

/** Full causal forward over B sequences of T tokens (ids row-major (B, T)) → logits (B·T, V). */
export function forward(model: Model, ids: Int32Array, B: number, T: number): Tensor {
  return head(model, trunk(model, ids, B, T, "forward"));
}

/** How forwardPooled reads a sequence: the mean of its positions, the per-channel max, or their sum. */
export const POOLINGS = ["mean", "max", "mean+max"] as const;
export type Pooling = (typeof POOLINGS)[number];

/**
 * Sequence classification reading: the final hidden states of each sequence's first lengths[b] positions
 * pooled (mean, per-channel max, or both added), then the final norm and the LM head → logits (B, V).
 * A label is then a token of the vocabulary (the guard's <|safe|>, <|S1|>, …). Max pooling is built from
 * existing ops: a constant one-hot mask of each channel's arg-max (so its gradient goes to that position
 * only) times the states, summed per sequence by a matmul.
 */
export function forwardPooled(model: Model, ids: Int32Array, B: number, T: number, lengths: Int32Array, pooling: Pooling = "mean"): Tensor {
  if (lengths.length !== B) throw new FrugalError("SHAPE", `forwardPooled: expected ${B} lengths, got ${lengths.length}`);
  for (let b = 0; b < B; b++) {
    const n = lengths[b]!;
    if (!(n >= 1 && n <= T)) throw new FrugalError("SHAPE", `forwardPooled: length ${n} of sequence ${b} is outside 1..${T}`);
  }
  const x = trunk(model, ids, B, T, "forwardPooled"); // (B·T, C)
  const mean = pooling === "max" ? null : E.matmul(E.tensor([B, B * T], poolMatrix(lengths, T, true)), x);
  const max = pooling === "mean" ? null : E.matmul(E.tensor([B, B * T], poolMatrix(lengths, T, false)), E.mul(x, E.tensor(x.shape, argmaxMask(x.data, lengths, T, x.shape[1]!))));
  return head(model, mean && max ? E.add(mean, max) : (mean ?? max)!);
}

/** (B, B·T): row b sums (or averages) positions 0..lengths[b]-1 of sequence b. */
function poolMatrix(lengths: Int32Array, T: number, average: boolean): Float32Array {
  const B = lengths.length, m = new Float32Array(B * B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) m[b * B * T + b * T + t] = average ? 1 / lengths[b]! : 1;
  return m;
}

/** (B·T, C) with a 1 at each sequence's arg-max position per channel (first one on ties), else 0. */
export function argmaxMask(x: Float32Array, lengths: Int32Array, T: number, C: number): Float32Array {
  const mask = new Float32Array(x.length);
  for (let b = 0; b < lengths.length; b++) {
    for (let c = 0; c < C; c++) {
      let best = b * T * C + c;
      for (let t = 1; t < lengths[b]!; t++) { const i = (b * T + t) * C + c; if (x[i]! > x[best]!) best = i; }
      mask[best] = 1;
    }
  }
  return mask;
}

/** Per-layer key/value caches: `slots` sequences of up to Tmax positions each (persistent memory). */
export class KVCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  constructor(readonly config: ModelConfig, readonly slots: number, readonly Tmax: number) {
    if (Tmax > config.max_position_embeddings) throw new FrugalError("CONTEXT", `KV cache of ${Tmax} positions exceeds max_position_embeddings ${config.max_position_embeddings}`);
    const n = slots * Tmax * config.num_key_value_heads * headDim(config);
    this.k = Array.from({ length: config.num_hidden_layers }, () => new Float32Array(n));
    this.v = Array.from({ length: config.num_hidden_layers }, () => new Float32Array(n));
  }
}

/**
 * Forward of Tn new tokens per sequence (ids (B, Tn)); row b lives in cache slot slot[b] at positions
 * pos[b].., which it fills. Returns logits (B·Tn, V), or each row's last position only (B, V) when
 * lastOnly. No gradients. Decoding (Tn = 1) runs each block as one fused kernel call unless fused is
 * false (the op-by-op path: the benchmark's reference and the tests' cross-check).
 */
export function forwardCached(model: Model, cache: KVCache, ids: Int32Array, pos: Int32Array, slot: Int32Array, Tn: number, lastOnly: boolean, fused = true): Tensor {
  return E.noGrad(() => {
    const c = model.config, B = pos.length, D = headDim(c), KVH = c.num_key_value_heads, row = KVH * D;
    if (ids.length !== B * Tn) throw new FrugalError("SHAPE", `forwardCached: expected ${B}×${Tn} ids, got ${ids.length}`);
    if (slot.length !== B) throw new FrugalError("SHAPE", `forwardCached: ${B} positions but ${slot.length} slots`);
    const positions = new Int32Array(B * Tn);
    for (let b = 0; b < B; b++) {
      if (pos[b]! + Tn > cache.Tmax) throw new FrugalError("CONTEXT", `sequence ${b} would reach position ${pos[b]! + Tn}, past the context of ${cache.Tmax}; shorten the prompt or max_tokens`);
      for (let t = 0; t < Tn; t++) positions[b * Tn + t] = pos[b]! + t;
    }
    let x = E.embedding(p(model, "model.embed_tokens.weight"), ids);
    for (let l = 0; l < c.num_hidden_layers; l++) {
      if (Tn === 1 && fused) { // decoding: the whole block in one kernel call
        x = E.decodeBlock(x, blockWeights(model, l), model.rope, cache.k[l]!, cache.v[l]!, pos, slot, cache.Tmax, c.num_attention_heads, KVH, c.rms_norm_eps);
        continue;
      }
      x = block(model, l, x, positions, (q, k, v) => {
        const kc = cache.k[l]!, vc = cache.v[l]!;
        for (let b = 0; b < B; b++) {
          const dst = (slot[b]! * cache.Tmax + pos[b]!) * row, src = b * Tn * row;
          kc.set(k.data.subarray(src, src + Tn * row), dst);
          vc.set(v.data.subarray(src, src + Tn * row), dst);
        }
        return E.attentionCached(q.view([B, Tn, c.num_attention_heads, D]), kc, vc, pos, slot, KVH, cache.Tmax).view([B * Tn, c.num_attention_heads * D]);
      });
    }
    if (lastOnly && Tn > 1) {
      const C = c.hidden_size, last = E.output([B, C], false);
      for (let b = 0; b < B; b++) last.data.set(x.data.subarray(((b + 1) * Tn - 1) * C, (b + 1) * Tn * C), b * C);
      x = last;
    }
    return head(model, x);
  });
}
