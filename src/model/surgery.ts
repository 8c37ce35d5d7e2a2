// Model surgery: reshapes of a trained model that keep what it computes — a larger vocabulary (growVocab),
// wider layers (widenModel), n models side by side as one (mergeModels) and a logit bias carried inside an
// ordinary Llama (addBiasChannel / setLogitBias). No forward pass here beyond transformer.ts's.
import { FrugalError, internal } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { type ModelConfig, headDim } from "./config.js";
import { memberShape } from "./blocks.js";
import { type Model, modelFromTensors, p } from "./transformer.js";

/**
 * The same model over a larger vocabulary whose first vocab_size ids mean what they meant (an extended
 * tokenizer): old rows are copied; new token i's embedding (and LM-head) row is the mean of the rows of
 * pieces(i), the old ids that spell it, so it starts where the model's reading of those pieces is.
 */
export function growVocab(model: Model, vocabSize: number, pieces: (id: number) => readonly number[]): Model {
  const c = model.config,
    C = c.hidden_size,
    V0 = c.vocab_size;
  if (vocabSize < V0)
    throw new FrugalError("CONFIG", `growVocab: the new vocabulary (${vocabSize}) is smaller than the model's (${V0})`);
  const spelled = Array.from({ length: vocabSize - V0 }, (_, k) => {
    // each new token's pieces, asked for once
    const ps = pieces(V0 + k);
    if (!ps.length || ps.some((q) => !(q >= 0 && q < V0)))
      throw internal(
        `growVocab: new token ${V0 + k} is spelled by ${JSON.stringify(ps)}, expected old ids below ${V0}`,
      );
    return ps;
  });
  const tensors = new Map([...model.params].map(([n, t]) => [n, t.data]));
  for (const name of c.tie_word_embeddings
    ? ["model.embed_tokens.weight"]
    : ["model.embed_tokens.weight", "lm_head.weight"]) {
    const old = tensors.get(name)!,
      grown = new Float32Array(vocabSize * C);
    grown.set(old);
    spelled.forEach((ps, k) => {
      for (const q of ps) for (let j = 0; j < C; j++) grown[(V0 + k) * C + j]! += old[q * C + j]! / ps.length;
    });
    tensors.set(name, grown);
  }
  return modelFromTensors({ ...c, vocab_size: vocabSize }, tensors, "growVocab");
}

/** The widths widenModel grows to; each at least the model's own. */
export interface Widths {
  hidden_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  intermediate_size: number;
}

/**
 * The same function in a wider model (more hidden dims, heads and MLP units), so a later stage has more
 * capacity than the base it starts from. New hidden dims start at zero in every residual write and the
 * embedding, norm gains are scaled by √(C0/C1) and eps by C0/C1 so RMSNorm of the old dims is unchanged, and every new
 * head
 * and MLP unit writes nothing yet; new reading weights are N(0, 0.02), so gradients reach all new weights.
 * Old heads keep their key/value heads (the query-per-key/value group size must stay).
 */
export function widenModel(model: Model, to: Widths, seed: number): Model {
  const c = model.config,
    D = headDim(c),
    C0 = c.hidden_size,
    C1 = to.hidden_size,
    H0 = c.num_attention_heads,
    K0 = c.num_key_value_heads;
  const bad = (Object.keys(to) as (keyof Widths)[]).filter((k) => !(Number.isInteger(to[k]) && to[k] >= c[k]));
  if (bad.length)
    throw new FrugalError(
      "CONFIG",
      `widenModel: ${bad.map((k) => `${k} ${to[k]}`).join(", ")} must be integers at least the model's (${bad.map((k) => c[k]).join(", ")}); a model can only grow`,
    );
  if (
    to.num_attention_heads * D !== C1 ||
    to.num_attention_heads % to.num_key_value_heads ||
    to.num_attention_heads / to.num_key_value_heads !== H0 / K0
  ) {
    throw new FrugalError(
      "CONFIG",
      `widenModel: heads must keep their size ${D} (hidden_size = ${D} × num_attention_heads) and the ${H0 / K0} query heads per key/value head; got hidden_size ${C1}, ${to.num_attention_heads} heads, ${to.num_key_value_heads} key/value heads`,
    );
  }
  const rng = new Rng(seed),
    I0 = c.intermediate_size,
    I1 = to.intermediate_size,
    s = Math.sqrt(C0 / C1);
  // old (r0 × c0) block at the top left of (r1 × c1); the rest: random where `fresh` says so, else zero
  const grow = (
    old: Float32Array,
    r0: number,
    c0: number,
    r1: number,
    c1: number,
    fresh: (r: number, col: number) => boolean,
  ) => {
    const out = new Float32Array(r1 * c1);
    for (let r = 0; r < r1; r++)
      for (let j = 0; j < c1; j++)
        out[r * c1 + j] = r < r0 && j < c0 ? old[r * c0 + j]! : fresh(r, j) ? 0.02 * rng.normal() : 0;
    return out;
  };
  const reads = () => true,
    writes = () => false,
    t = new Map<string, Float32Array>();
  for (const [name, param] of model.params) {
    const w = param.data,
      tail = name.replace(/^model\.layers\.\d+\./, "");
    if (name.endsWith("norm.weight"))
      t.set(
        name,
        Float32Array.from({ length: C1 }, (_, j) => (j < C0 ? w[j]! : 1) * s),
      );
    else if (name === "model.embed_tokens.weight") t.set(name, grow(w, c.vocab_size, C0, c.vocab_size, C1, writes));
    else if (name === "lm_head.weight") t.set(name, grow(w, c.vocab_size, C0, c.vocab_size, C1, reads));
    else if (tail === "self_attn.q_proj.weight") t.set(name, grow(w, H0 * D, C0, C1, C1, reads));
    else if (/self_attn\.[kv]_proj\.weight$/.test(tail))
      t.set(name, grow(w, K0 * D, C0, to.num_key_value_heads * D, C1, reads));
    else if (tail === "self_attn.q_proj.bias") t.set(name, grow(w, 1, H0 * D, 1, C1, writes));
    else if (/self_attn\.[kv]_proj\.bias$/.test(tail))
      t.set(name, grow(w, 1, K0 * D, 1, to.num_key_value_heads * D, writes));
    else if (tail === "self_attn.o_proj.weight") t.set(name, grow(w, C0, H0 * D, C1, C1, writes));
    else if (/mlp\.(gate|up)_proj\.weight$/.test(tail)) t.set(name, grow(w, I0, C0, I1, C1, reads));
    else if (tail === "mlp.down_proj.weight") t.set(name, grow(w, C0, I0, C1, I1, writes));
    else throw internal(`widenModel does not know how to widen ${name}`);
  }
  return modelFromTensors({ ...c, ...to, rms_norm_eps: c.rms_norm_eps * s * s }, t, "widenModel"); // the same eps relative to the old dims' mean square
}

/** The shape mergeModels gives n members of shape c. */
export function mergedConfig(c: ModelConfig, n: number): ModelConfig {
  return {
    ...c,
    hidden_size: c.hidden_size * n,
    num_attention_heads: c.num_attention_heads * n,
    num_key_value_heads: c.num_key_value_heads * n,
    intermediate_size: c.intermediate_size * n,
  };
}

/** One member's shape in a model of n merged members (mergedConfig's inverse; a bias channel's heads dropped). */
export function memberConfig(c: ModelConfig, n: number): ModelConfig {
  const b = memberShape(c, n);
  if (!b) throw internal(`memberConfig: ${n} members do not fit ${JSON.stringify(c)}`);
  return {
    ...c,
    hidden_size: b.hidden,
    num_attention_heads: b.heads,
    num_key_value_heads: b.kvHeads,
    intermediate_size: b.intermediate,
  };
}

/**
 * The shape addBiasChannel gives a model of shape c: one more key/value head's group of heads (its eps rescaled by
 * widenModel).
 */
export function biasChannelConfig(c: ModelConfig): Widths {
  const rep = c.num_attention_heads / c.num_key_value_heads;
  return {
    hidden_size: c.hidden_size + rep * headDim(c),
    num_attention_heads: c.num_attention_heads + rep,
    num_key_value_heads: c.num_key_value_heads + 1,
    intermediate_size: c.intermediate_size,
  };
}

/**
 * n models of one shape side by side in one model n times as wide, with block-diagonal weights: each
 * member keeps its own dims, heads and MLP units, and the logits are the mean of the members' logits
 * (final norm gains / n). Exact except that every RMSNorm divides by the members' joint rms rather than
 * each member's own, which is close when the members were fine-tuned from one model; a short fine-tune
 * after the merge repairs the rest. Members must share the config (and so the tokenizer).
 */
export function mergeModels(models: readonly Model[]): Model {
  const c = sharedConfig(models, "mergeModels"),
    n = models.length;
  const t = new Map<string, Float32Array>();
  for (const [name, param] of models[0]!.params) {
    const parts = models.map((m) => m.params.get(name)!.data),
      [rows, cols] = param.shape.length === 2 ? [param.shape[0]!, param.shape[1]!] : [1, param.shape[0]!];
    // vocabulary tables and vectors keep their rows (member dims side by side); weight matrices stack members
    // diagonally
    const diagonal = rows > 1 && name !== "model.embed_tokens.weight" && name !== "lm_head.weight";
    const Ccols = cols * n,
      out = new Float32Array((diagonal ? rows * n : rows) * Ccols);
    parts.forEach((w, m) => {
      const r0 = diagonal ? m * rows : 0;
      for (let r = 0; r < rows; r++)
        for (let j = 0; j < cols; j++) out[(r0 + r) * Ccols + m * cols + j] = w[r * cols + j]!;
    });
    if (name === "model.norm.weight")
      out.forEach((x, i) => {
        out[i] = x / n;
      });
    t.set(name, out);
  }
  return modelFromTensors(mergedConfig(c, n), t, "mergeModels");
}

/** The one config every member has (members must share shape and vocabulary). */
function sharedConfig(models: readonly Model[], caller: string): ModelConfig {
  if (!models.length) throw internal(`${caller} needs at least one model`);
  const c = models[0]!.config;
  const differs = models.findIndex((m) => JSON.stringify(m.config) !== JSON.stringify(c));
  if (differs > 0)
    throw new FrugalError(
      "CONFIG",
      `${caller}: member ${differs} has config ${JSON.stringify(models[differs]!.config)}, expected the first member's ${JSON.stringify(c)}; members must share one shape and vocabulary`,
    );
  return c;
}

/**
 * n models of one shape averaged weight by weight (a "model soup"): as wide as one member. Members fine-tuned
 * from one model stay close enough that their mean is a model of its own (not an ensemble: the logits are not
 * the members' mean); the caller measures what it keeps. Members must share the config (and so the tokenizer).
 */
export function averageModels(models: readonly Model[]): Model {
  const c = sharedConfig(models, "averageModels"),
    t = new Map<string, Float32Array>();
  for (const [name, param] of models[0]!.params) {
    const out = new Float32Array(param.data.length);
    for (const m of models) {
      const w = m.params.get(name)!.data;
      for (let i = 0; i < out.length; i++) out[i]! += w[i]! / models.length;
    }
    t.set(name, out);
  }
  return modelFromTensors(c, t, "averageModels");
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
  const c = model.config,
    C0 = c.hidden_size;
  if (c.tie_word_embeddings)
    throw new FrugalError(
      "CONFIG",
      "addBiasChannel: a tied LM head reads the bias channel for every token alike; untie the head (tie_word_embeddings: false) to give one token a bias",
    );
  if (!(Number.isInteger(carrier) && carrier >= 0 && carrier < c.vocab_size))
    throw internal(`addBiasChannel: carrier token ${carrier} is outside the vocabulary of ${c.vocab_size}`);
  const w = widenModel(model, biasChannelConfig(c), seed);
  const C1 = w.config.hidden_size,
    emb = p(w, "model.embed_tokens.weight").data;
  let ss = 0;
  for (let v = 0; v < c.vocab_size; v++) for (let j = 0; j < C0; j++) ss += emb[v * C1 + j]! ** 2;
  emb[carrier * C1 + C0] = Math.sqrt(ss / (c.vocab_size * C0));
  p(w, "lm_head.weight").data.forEach((_, i, head) => {
    if (i % C1 === C0) head[i] = 0;
  });
  for (const [name, t] of w.params) if (name.endsWith("layernorm.weight")) t.data[C0] = 0;
  return w;
}

/** The bias channel's index (a dim no layer norm reads and some embedding sets), or -1 when the model has none. */
export function biasChannel(model: Model): number {
  const C = model.config.hidden_size,
    emb = p(model, "model.embed_tokens.weight").data,
    norms = [...model.params].filter(([n]) => n.endsWith("layernorm.weight"));
  for (let j = 0; j < C; j++) {
    if (norms.some(([, t]) => t.data[j] !== 0)) continue;
    for (let v = 0; v < model.config.vocab_size; v++) if (emb[v * C + j] !== 0) return j;
  }
  return -1;
}

/** Sets β, the LM head's weight on the bias channel for `token`. */
export function setLogitBias(model: Model, token: number, beta: number): void {
  const j = biasChannel(model);
  if (j < 0) throw internal("setLogitBias: this model has no bias channel (addBiasChannel adds one)");
  p(model, "lm_head.weight").data[token * model.config.hidden_size + j] = beta;
}
