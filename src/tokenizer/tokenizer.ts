// Tokenizers behind one interface, all stored as Hugging Face tokenizer.json:
//  - char: every character one token (a BPE model with no merges), for the synthetic reasoning tasks;
//    encoded by a map lookup here, and proven equal to what @huggingface/tokenizers makes of the file;
//  - byte-level BPE: trained here (bpe-train.ts), encoded/decoded by @huggingface/tokenizers.
// Any tokenizer.json the library reads (e.g. a real Qwen2/Llama one) loads as a "json" tokenizer.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { FrugalError } from "../common/errors.js";
import type { ChatFormat } from "./template.js";

/** Special tokens of the chat template; the reasoning tags are added tokens that decode to their text. */
export const SPECIAL = {
  pad: "<|pad|>",
  unk: "<|unk|>",
  end: "<|end|>",
  user: "<|user|>",
  assistant: "<|assistant|>",
} as const;
export const TAGS = ["<think>", "</think>", "<answer>", "</answer>"] as const;

export interface Tokenizer {
  readonly kind: "char" | "bpe" | "json";
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** id of a special token or tag, e.g. tokenId("<|end|>") */
  tokenId(token: string): number;
  toJSON(): object;
  /** a Hugging Face model's own chat template (from tokenizer_config.json); frugal's format when absent */
  chat?: ChatFormat;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: false;
  lstrip: false;
  rstrip: false;
  normalized: false;
  special: boolean;
}
const added = (id: number, content: string, special: boolean): AddedTokenJson => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special,
});

/** Specials then tags: ids 0..8 in every frugal tokenizer. */
export function addedTokens(): AddedTokenJson[] {
  const specials = Object.values(SPECIAL).map((c, i) => added(i, c, true));
  return [...specials, ...TAGS.map((t, i) => added(specials.length + i, t, false))];
}

class LibraryTokenizer implements Tokenizer {
  protected readonly hf: HfTokenizer;
  readonly vocabSize: number;
  chat?: ChatFormat;
  constructor(
    readonly kind: "char" | "bpe" | "json",
    protected readonly json: Record<string, unknown>,
  ) {
    try {
      this.hf = new HfTokenizer(json, {});
    } catch (e) {
      throw new FrugalError("TOKENIZER", `tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    this.vocabSize = Math.max(...this.hf.get_vocab(true).values()) + 1;
  }
  encode(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }
  decode(ids: readonly number[]): string {
    return ids.length === 0
      ? ""
      : this.hf.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }
  tokenId(token: string): number {
    const id = this.hf.token_to_id(token);
    if (id === undefined)
      throw new FrugalError(
        "TOKENIZER",
        `the tokenizer has no token "${token}"; was it made by frugal (which adds ${Object.values(SPECIAL).join(" ")})?`,
      );
    return id;
  }
  toJSON(): object {
    return this.json;
  }
}

/** Character-level: the fast path encodes by lookup; the file is a merge-free BPE any HF loader reads. */
export class CharTokenizer extends LibraryTokenizer {
  private readonly map = new Map<string, number>();
  private readonly inv: string[] = [];
  private readonly addedRe: RegExp;
  constructor(json: Record<string, unknown>) {
    super("char", json);
    for (const [tok, id] of this.hf.get_vocab(true)) {
      this.map.set(tok, id);
      this.inv[id] = tok;
    }
    const tags = addedTokens().map((t) => t.content.replace(/[|[\]\\/^$.*+?(){}]/g, "\\$&"));
    this.addedRe = new RegExp(`(${tags.join("|")})`);
  }
  /** A char tokenizer over the given characters (plus specials and tags). */
  static fromChars(chars: string): CharTokenizer {
    const vocab: Record<string, number> = {};
    for (const t of addedTokens()) vocab[t.content] = t.id;
    let id = addedTokens().length;
    for (const ch of [...new Set([...chars])].sort()) if (!(ch in vocab)) vocab[ch] = id++;
    return new CharTokenizer({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: addedTokens(),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: "Fuse" },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: SPECIAL.unk,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    });
  }
  override encode(text: string): number[] {
    const out: number[] = [],
      unk = this.map.get(SPECIAL.unk)!;
    for (const part of text.split(this.addedRe)) {
      if (!part) continue;
      const whole = this.map.get(part);
      if (whole !== undefined && part.length > 1) {
        out.push(whole);
        continue;
      }
      for (const ch of part) out.push(this.map.get(ch) ?? unk);
    }
    return out;
  }
  override decode(ids: readonly number[]): string {
    let s = "";
    for (const id of ids) s += this.inv[id] ?? "";
    return s;
  }
}

/** Loads any tokenizer.json: frugal char tokenizers get the fast path, everything else the library. */
export function loadTokenizer(json: unknown): Tokenizer {
  if (typeof json !== "object" || json === null)
    throw new FrugalError("TOKENIZER", "tokenizer.json must be a JSON object");
  const j = json as Record<string, unknown>;
  const model = j.model as { type?: string; merges?: unknown[] } | undefined;
  if (!model || typeof model !== "object") throw new FrugalError("TOKENIZER", 'tokenizer.json has no "model" section');
  if (model.type === "BPE" && Array.isArray(model.merges) && model.merges.length === 0 && j.pre_tokenizer === null)
    return new CharTokenizer(j);
  const isOurs =
    Array.isArray(j.added_tokens) &&
    (j.added_tokens as { content: string }[]).some((t) => t.content === SPECIAL.assistant);
  return new LibraryTokenizer(isOurs ? "bpe" : "json", j);
}

export function bpeFromJson(json: Record<string, unknown>): Tokenizer {
  return new LibraryTokenizer("bpe", json);
}
