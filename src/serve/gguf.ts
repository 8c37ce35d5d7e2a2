// GGUF export (v3) for llama.cpp of the llama (and mistral), qwen2 (q/k/v biases) and qwen3 (q/k norms) layouts:
// architecture metadata, the tokenizer as a "gpt2"-model vocabulary (char tokens mapped through GPT-2's
// byte→unicode table so llama.cpp detokenizes them; byte-level BPE and added tokens kept; padded to the embedding
// rows), F32, F16 or BF16 tensors with llama.cpp's names (norms and biases stay F32). For llama, Q and K rows are permuted
// from Hugging Face's rotate-half RoPE to llama.cpp's interleaved one, as llama.cpp's converter does; qwen2/qwen3
// use NeoX RoPE there and keep HF's order. Not here: quantisation, rope_scaling, reading GGUF.
import { FrugalError, internal } from "../common/errors.js";
import { hasQkNorm, headDim } from "../model/config.js";
import type { Model } from "../model/transformer.js";
import { toBf16Array } from "../engine/bf16.js";
import { f16ToF32 } from "../model/safetensors.js";
import { padId } from "../tokenizer/chat.js";
import { writeFileAtomic } from "../common/files.js";
import { bytesToUnicode } from "../tokenizer/bpe-train.js";
import { addedTokens, type Tokenizer } from "../tokenizer/tokenizer.js";

const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
const GGML = { F32: 0, F16: 1, BF16: 30 } as const;
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

function vocab(tok: Tokenizer, rows: number): { tokens: string[]; types: number[]; merges: string[] } {
  const json = tok.toJSON() as {
    model?: { vocab?: Record<string, number>; merges?: (string | string[])[] };
    added_tokens?: { id: number; content: string; special?: boolean }[];
  };
  const v = json.model?.vocab;
  if (!v)
    throw new FrugalError(
      "EXPORT",
      "the tokenizer has no model.vocab; GGUF export supports byte-level BPE and frugal's char tokenizers",
    );
  const addedList = [...addedTokens(), ...(json.added_tokens ?? [])];
  const specials = new Set(addedList.filter((t) => t.special).map((t) => t.content)),
    added = new Set(addedList.map((t) => t.content));
  const b2u = bytesToUnicode(),
    byteLevel = tok.kind !== "char";
  // rows past the tokenizer (real models pad the embedding) get unique unused tokens, as llama.cpp's converter does
  const tokens: string[] = Array.from({ length: rows }, (_, i) => `[PAD${i}]`),
    types: number[] = new Array(rows).fill(5);
  const put = (s: string, id: number) => {
    if (id >= rows) return;
    tokens[id] = byteLevel || added.has(s) ? s : [...new TextEncoder().encode(s)].map((b) => b2u[b]).join("");
    types[id] = specials.has(s) ? 3 : added.has(s) ? 4 : 1;
  };
  for (const [s, id] of Object.entries(v)) put(s, id);
  for (const t of json.added_tokens ?? []) put(t.content, t.id);
  const merges = (json.model?.merges ?? []).map((m) => (Array.isArray(m) ? m.join(" ") : m));
  return { tokens, types, merges };
}

/** IEEE half precision bits of a float32, rounded to nearest even (as numpy / ggml convert). */
const f32Scratch = new Float32Array(1),
  u32Scratch = new Uint32Array(f32Scratch.buffer);
export function toF16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!,
    sign = (b >>> 16) & 0x8000,
    exp = (b >>> 23) & 0xff,
    man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = man | 0x800000,
      shift = 14 - e,
      half = m >>> shift,
      rest = m & ((1 << shift) - 1),
      mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && half & 1) ? half + 1 : half);
  }
  const half = (e << 10) | (man >>> 13),
    rest = man & 0x1fff;
  return sign | (rest > 0x1000 || (rest === 0x1000 && half & 1) ? half + 1 : half);
}

/** A float32 array as IEEE half bits. */
export function toF16Array(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toF16Bits(x[i]!);
  return out;
}

let halfTable: Float32Array | null = null;
/** Rounds every value to the nearest half-precision number, in place (what an F16 file holds). */
export function roundToF16(x: Float32Array): void {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = f16ToF32(h);
  }
  for (let i = 0; i < x.length; i++) x[i] = halfTable[toF16Bits(x[i]!)]!;
}

export type GgufDtype = "f32" | "f16" | "bf16";
const ARCH_OF: Record<string, string> = { llama: "llama", mistral: "llama", qwen2: "qwen2", qwen3: "qwen3" };

/** The architecture name and metadata of a model for llama.cpp; refuses what llama.cpp would compute differently. */
function archMeta(model: Model, tok: Tokenizer, name: string, dtype: GgufDtype): { arch: string; meta: Meta[] } {
  const c = model.config,
    arch = ARCH_OF[c.model_type];
  if (!arch || (arch === "llama" && c.attention_bias))
    throw new FrugalError("EXPORT", `GGUF export has no llama.cpp architecture for ${c.model_type} with q/k/v biases`);
  if (c.rope_scaling)
    throw new FrugalError(
      "EXPORT",
      "GGUF export does not write rope_scaling (llama.cpp's rope_freqs); not supported yet",
    );
  const D = headDim(c),
    voc = vocab(tok, c.vocab_size),
    end = tok.chat ? tok.chat.endToken : "<|end|>";
  const pre = tok.kind !== "json" ? "default" : arch === "llama" ? "llama-bpe" : "qwen2";
  const meta: Meta[] = [
    ["general.architecture", "str", arch],
    ["general.name", "str", name],
    ["general.file_type", "u32", { f32: 0, f16: 1, bf16: 32 }[dtype]],
    ["general.alignment", "u32", 32],
    [`${arch}.context_length`, "u32", c.max_position_embeddings],
    [`${arch}.embedding_length`, "u32", c.hidden_size],
    [`${arch}.block_count`, "u32", c.num_hidden_layers],
    [`${arch}.feed_forward_length`, "u32", c.intermediate_size],
    [`${arch}.rope.dimension_count`, "u32", D],
    [`${arch}.attention.head_count`, "u32", c.num_attention_heads],
    [`${arch}.attention.head_count_kv`, "u32", c.num_key_value_heads],
    [`${arch}.attention.key_length`, "u32", D],
    [`${arch}.attention.value_length`, "u32", D],
    [`${arch}.attention.layer_norm_rms_epsilon`, "f32", c.rms_norm_eps],
    [`${arch}.rope.freq_base`, "f32", c.rope_theta],
    [`${arch}.vocab_size`, "u32", c.vocab_size],
    ["tokenizer.ggml.model", "str", "gpt2"],
    ["tokenizer.ggml.pre", "str", pre],
    ["tokenizer.ggml.tokens", "strs", voc.tokens],
    ["tokenizer.ggml.token_type", "i32s", voc.types],
    ["tokenizer.ggml.merges", "strs", voc.merges],
    ["tokenizer.ggml.bos_token_id", "u32", tok.chat ? tok.tokenId(end) : tok.tokenId("<|user|>")],
    ["tokenizer.ggml.eos_token_id", "u32", tok.tokenId(end)],
    ["tokenizer.ggml.padding_token_id", "u32", padId(tok)],
    ["tokenizer.ggml.add_bos_token", "bool", 0],
  ];
  if (tok.chat && typeof tok.chat.config.chat_template === "string")
    meta.push(["tokenizer.chat_template", "str", tok.chat.config.chat_template]);
  return { arch, meta };
}

export function exportGguf(
  model: Model,
  tok: Tokenizer,
  file: string,
  name: string,
  dtype: GgufDtype = "f32",
): { bytes: number; tensors: number } {
  const c = model.config,
    D = headDim(c),
    { arch, meta } = archMeta(model, tok, name, dtype);
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
  const permute = (heads: number) =>
    arch === "llama" ? (w: Float32Array, s: readonly number[]) => permuteRope(w, heads, D, s[1]!) : undefined;
  add("token_embd.weight", "model.embed_tokens.weight");
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`,
      g = `blk.${l}.`;
    add(g + "attn_norm.weight", p + "input_layernorm.weight");
    add(g + "attn_q.weight", p + "self_attn.q_proj.weight", permute(c.num_attention_heads));
    add(g + "attn_k.weight", p + "self_attn.k_proj.weight", permute(c.num_key_value_heads));
    add(g + "attn_v.weight", p + "self_attn.v_proj.weight");
    if (c.attention_bias) for (const x of ["q", "k", "v"]) add(`${g}attn_${x}.bias`, `${p}self_attn.${x}_proj.bias`);
    if (hasQkNorm(c)) {
      add(g + "attn_q_norm.weight", p + "self_attn.q_norm.weight");
      add(g + "attn_k_norm.weight", p + "self_attn.k_norm.weight");
    }
    add(g + "attn_output.weight", p + "self_attn.o_proj.weight");
    add(g + "ffn_norm.weight", p + "post_attention_layernorm.weight");
    add(g + "ffn_gate.weight", p + "mlp.gate_proj.weight");
    add(g + "ffn_up.weight", p + "mlp.up_proj.weight");
    add(g + "ffn_down.weight", p + "mlp.down_proj.weight");
  }
  add("output_norm.weight", "model.norm.weight");
  if (!c.tie_word_embeddings) add("output.weight", "lm_head.weight");
  return writeGguf(file, meta, tensors, dtype);
}

/** The file: header, metadata, tensor infos, then the 32-byte-aligned data (2-D tensors in `dtype`). */
function writeGguf(
  file: string,
  meta: Meta[],
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  dtype: GgufDtype,
): { bytes: number; tensors: number } {
  const half = (t: { shape: number[] }) => dtype !== "f32" && t.shape.length === 2;
  const halfType = dtype === "bf16" ? GGML.BF16 : GGML.F16;
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
    w.u32(half(t) ? halfType : GGML.F32);
    w.u64(offset);
    offset += Math.ceil((t.data.length * (half(t) ? 2 : 4)) / 32) * 32;
  }
  w.pad(32);
  for (const t of tensors) {
    if (half(t)) w.bytes(new Uint8Array((dtype === "bf16" ? toBf16Array : toF16Array)(t.data).buffer));
    else w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.pad(32);
  }
  const bytes = w.concat();
  writeFileAtomic(file, bytes);
  return { bytes: bytes.length, tensors: tensors.length };
}
