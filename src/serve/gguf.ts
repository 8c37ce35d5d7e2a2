// GGUF export (v3) of a Llama-layout frugal model for llama.cpp: llama.* architecture metadata, the
// tokenizer as a "gpt2"-model vocabulary (char tokens mapped through GPT-2's byte→unicode table so
// llama.cpp detokenizes them; byte-level BPE tokens kept), F32 tensors with llama.cpp's names. Q and K
// rows are permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved one, as
// llama.cpp's own converter does. Not here: quantisation, Qwen2 biases, reading GGUF.
import { FrugalError, internal } from "../common/errors.js";
import type { Model } from "../model/transformer.js";
import { writeFileAtomic } from "../common/files.js";
import { bytesToUnicode } from "../tokenizer/bpe-train.js";
import { addedTokens, type Tokenizer } from "../tokenizer/tokenizer.js";

const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
type Meta =
  [string, "u32" | "f32" | "str" | "bool", number | string] | [string, "strs", string[]] | [string, "i32s", number[]];

class Writer {
  private chunks: Uint8Array[] = [];
  size = 0;
  private push(b: Uint8Array) {
    this.chunks.push(b);
    this.size += b.length;
  }
  u32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  i32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.push(b);
  }
  u64(v: number) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  bytes(b: Uint8Array) {
    this.push(b);
  }
  pad(align: number) {
    const n = (align - (this.size % align)) % align;
    if (n) this.push(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function writeMeta(w: Writer, [key, kind, value]: Meta): void {
  w.str(key);
  switch (kind) {
    case "u32":
      w.u32(T.U32);
      w.u32(value as number);
      break;
    case "f32":
      w.u32(T.F32);
      w.f32(value as number);
      break;
    case "bool":
      w.u32(T.BOOL);
      w.bytes(Uint8Array.of(value ? 1 : 0));
      break;
    case "str":
      w.u32(T.STRING);
      w.str(value as string);
      break;
    case "strs":
      w.u32(T.ARRAY);
      w.u32(T.STRING);
      w.u64((value as string[]).length);
      for (const s of value as string[]) w.str(s);
      break;
    case "i32s":
      w.u32(T.ARRAY);
      w.u32(T.I32);
      w.u64((value as number[]).length);
      for (const x of value as number[]) w.i32(x);
      break;
  }
}

/** Rotate-half (HF) → interleaved (llama.cpp) row order of a (heads·D, in) projection. */
export function permuteRope(w: Float32Array, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(w.length),
    half = D / 2;
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < 2; j++)
      for (let i = 0; i < half; i++) {
        const from = (h * D + j * half + i) * cols,
          to = (h * D + i * 2 + j) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
  return out;
}

function vocab(tok: Tokenizer): { tokens: string[]; types: number[]; merges: string[] } {
  const json = tok.toJSON() as { model?: { vocab?: Record<string, number>; merges?: (string | string[])[] } };
  const v = json.model?.vocab;
  if (!v)
    throw new FrugalError(
      "EXPORT",
      "the tokenizer has no model.vocab; GGUF export supports frugal's char and BPE tokenizers",
    );
  const specials = new Set(
      addedTokens()
        .filter((t) => t.special)
        .map((t) => t.content),
    ),
    added = new Set(addedTokens().map((t) => t.content));
  const b2u = bytesToUnicode(),
    byteLevel = tok.kind !== "char";
  const tokens: string[] = new Array(tok.vocabSize).fill("<|unused|>"),
    types: number[] = new Array(tok.vocabSize).fill(5);
  for (const [s, id] of Object.entries(v)) {
    const mapped = byteLevel || added.has(s) ? s : [...new TextEncoder().encode(s)].map((b) => b2u[b]).join("");
    tokens[id] = mapped;
    types[id] = specials.has(s) ? 3 : added.has(s) ? 4 : 1;
  }
  const merges = (json.model?.merges ?? []).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  return { tokens, types, merges };
}

export function exportGguf(
  model: Model,
  tok: Tokenizer,
  file: string,
  name: string,
): { bytes: number; tensors: number } {
  const c = model.config;
  if (c.model_type !== "llama" || c.attention_bias)
    throw new FrugalError(
      "EXPORT",
      `GGUF export supports the Llama layout without attention biases; this model is ${c.model_type}${c.attention_bias ? " with q/k/v biases" : ""}`,
    );
  const D = c.hidden_size / c.num_attention_heads,
    voc = vocab(tok);
  const meta: Meta[] = [
    ["general.architecture", "str", "llama"],
    ["general.name", "str", name],
    ["general.file_type", "u32", 0],
    ["general.alignment", "u32", 32],
    ["llama.context_length", "u32", c.max_position_embeddings],
    ["llama.embedding_length", "u32", c.hidden_size],
    ["llama.block_count", "u32", c.num_hidden_layers],
    ["llama.feed_forward_length", "u32", c.intermediate_size],
    ["llama.rope.dimension_count", "u32", D],
    ["llama.attention.head_count", "u32", c.num_attention_heads],
    ["llama.attention.head_count_kv", "u32", c.num_key_value_heads],
    ["llama.attention.layer_norm_rms_epsilon", "f32", c.rms_norm_eps],
    ["llama.rope.freq_base", "f32", c.rope_theta],
    ["llama.vocab_size", "u32", c.vocab_size],
    ["tokenizer.ggml.model", "str", "gpt2"],
    ["tokenizer.ggml.pre", "str", "default"],
    ["tokenizer.ggml.tokens", "strs", voc.tokens],
    ["tokenizer.ggml.token_type", "i32s", voc.types],
    ["tokenizer.ggml.merges", "strs", voc.merges],
    ["tokenizer.ggml.bos_token_id", "u32", tok.tokenId("<|user|>")],
    ["tokenizer.ggml.eos_token_id", "u32", tok.tokenId("<|end|>")],
    ["tokenizer.ggml.padding_token_id", "u32", tok.tokenId("<|pad|>")],
    ["tokenizer.ggml.add_bos_token", "bool", 0],
  ];
  const get = (n: string) => {
    const t = model.params.get(n);
    if (!t) throw internal(`parameter ${n} missing`);
    return t;
  };
  const tensors: { name: string; shape: number[]; data: Float32Array }[] = [];
  const add = (gg: string, hf: string, f?: (w: Float32Array, shape: readonly number[]) => Float32Array) => {
    const t = get(hf);
    tensors.push({ name: gg, shape: [...t.shape], data: f ? f(t.data, t.shape) : t.data });
  };
  add("token_embd.weight", "model.embed_tokens.weight");
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`,
      g = `blk.${l}.`;
    add(g + "attn_norm.weight", p + "input_layernorm.weight");
    add(g + "attn_q.weight", p + "self_attn.q_proj.weight", (w, s) => permuteRope(w, c.num_attention_heads, D, s[1]!));
    add(g + "attn_k.weight", p + "self_attn.k_proj.weight", (w, s) => permuteRope(w, c.num_key_value_heads, D, s[1]!));
    add(g + "attn_v.weight", p + "self_attn.v_proj.weight");
    add(g + "attn_output.weight", p + "self_attn.o_proj.weight");
    add(g + "ffn_norm.weight", p + "post_attention_layernorm.weight");
    add(g + "ffn_gate.weight", p + "mlp.gate_proj.weight");
    add(g + "ffn_up.weight", p + "mlp.up_proj.weight");
    add(g + "ffn_down.weight", p + "mlp.down_proj.weight");
  }
  add("output_norm.weight", "model.norm.weight");
  if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight");

  const w = new Writer();
  w.bytes(new TextEncoder().encode("GGUF"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const m of meta) writeMeta(w, m);
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d); // GGUF lists the fastest-moving dimension first
    w.u32(0);
    w.u64(offset);
    offset += Math.ceil((t.data.length * 4) / 32) * 32;
  }
  w.pad(32);
  for (const t of tensors) {
    w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.pad(32);
  }
  const bytes = w.concat();
  writeFileAtomic(file, bytes);
  return { bytes: bytes.length, tensors: tensors.length };
}
