// Trains a byte-level BPE (GPT-2 style: bytes mapped to printable characters, GPT-2 pre-tokenizer regex)
// and emits a Hugging Face tokenizer.json, which @huggingface/tokenizers then encodes and decodes.
// Incremental pair counts; ties break on the lexicographically smaller pair so training is deterministic.
import { FrugalError, internal } from "../common/errors.js";
import { addedTokens, bpeFromJson, type Tokenizer } from "./tokenizer.js";

/** GPT-2's byte → printable-unicode table (bytes that are not printable move to U+0100…). */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return table;
}

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * With `singleDigits`, pieces that hold a digit are never merged, so every digit stays its own token under
 * any pre-tokenizer (the file keeps GPT-2's): arithmetic is then tokenized exactly as a char model would.
 * With `start` (the merges of an existing frugal BPE), those merges come first and keep their ids, and the
 * new ones are learned on top of them: the result extends that tokenizer (every old id means the same).
 */
export function trainBpe(
  texts: Iterable<string>,
  vocabSize: number,
  o: { singleDigits?: boolean; start?: readonly string[] } = {},
): Tokenizer {
  const base = addedTokens().length + 256;
  if (!Number.isInteger(vocabSize) || vocabSize < base)
    throw new FrugalError(
      "CONFIG",
      `BPE vocab size must be an integer ≥ ${base} (specials + 256 bytes), got ${vocabSize}`,
    );
  const b2u = bytesToUnicode(),
    enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(PRETOKENIZE)) {
      if (o.singleDigits && /\p{N}/u.test(m[0])) continue;
      let w = "";
      for (const byte of enc.encode(m[0])) w += b2u[byte];
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const start = o.start ?? [],
    rank = new Map(start.map((m, i) => [m, i]));
  if (base + start.length > vocabSize)
    throw new FrugalError(
      "CONFIG",
      `BPE vocab size ${vocabSize} is smaller than the tokenizer it extends (${base + start.length} tokens)`,
    );
  const words = [...counts.keys()].map((w) => applyMerges([...w], rank));
  const freq = [...counts.values()];
  const pairs = new Map<string, number>(),
    where = new Map<string, Set<number>>();
  const addPairs = (wi: number, sign: number) => {
    const s = words[wi]!;
    for (let i = 0; i + 1 < s.length; i++) {
      const k = s[i] + " " + s[i + 1];
      pairs.set(k, (pairs.get(k) ?? 0) + sign * freq[wi]!);
      if (sign > 0) {
        let set = where.get(k);
        if (!set) where.set(k, (set = new Set()));
        set.add(wi);
      }
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));
  const merges: string[] = [...start];
  while (base + merges.length < vocabSize) {
    let best = "",
      bestN = 1;
    for (const [k, n] of pairs)
      if (n > bestN || (n === bestN && n > 1 && k < best)) {
        best = k;
        bestN = n;
      }
    if (bestN < 2) break;
    if (rank.has(best)) throw internal(`BPE extension relearned the existing merge "${best}"`);
    merges.push(best);
    const [a, b] = best.split(" ") as [string, string],
      ab = a + b;
    for (const wi of where.get(best) ?? []) {
      const s = words[wi]!;
      addPairs(wi, -1);
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(ab);
          i++;
        } else out.push(s[i]!);
      }
      words[wi] = out;
      addPairs(wi, 1);
    }
    pairs.delete(best);
    where.delete(best);
  }
  const vocab: Record<string, number> = {};
  for (const t of addedTokens()) vocab[t.content] = t.id;
  let id = addedTokens().length;
  for (const u of b2u) vocab[u] = id++;
  for (const m of merges) vocab[m.replace(" ", "")] ??= id++;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return bpeFromJson({
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  });
}

/** A word's symbols after the given merges, lowest rank first (how a BPE encoder splits it). */
function applyMerges(s: string[], rank: ReadonlyMap<string, number>): string[] {
  if (!rank.size) return s;
  for (;;) {
    let best = -1,
      bestRank = Infinity;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = rank.get(s[i] + " " + s[i + 1]);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return s;
    s = [...s.slice(0, best), s[best]! + s[best + 1]!, ...s.slice(best + 2)];
  }
}

/**
 * A frugal byte-level BPE extended to vocabSize with merges learned on texts (its merges first, so every old
 * id keeps its meaning), and how each new token is spelled in old ids (its bytes under the old merges).
 */
export function extendBpe(
  old: Tokenizer,
  texts: Iterable<string>,
  vocabSize: number,
  o: { singleDigits?: boolean } = {},
): { tokenizer: Tokenizer; pieces: (id: number) => number[] } {
  const oj = old.toJSON() as { model?: { type?: string; merges?: unknown[]; vocab?: Record<string, number> } };
  const merges = oj.model?.merges,
    oldVocab = oj.model?.vocab;
  if (
    old.kind !== "bpe" ||
    oj.model?.type !== "BPE" ||
    !Array.isArray(merges) ||
    !oldVocab ||
    !merges.every((m) => typeof m === "string")
  ) {
    throw new FrugalError(
      "TOKENIZER",
      `only a byte-level BPE made by frugal can be extended; this tokenizer is "${old.kind}"`,
    );
  }
  const tokenizer = trainBpe(texts, vocabSize, { ...o, start: merges as string[] });
  const nj = tokenizer.toJSON() as { model: { vocab: Record<string, number> } },
    byId: string[] = [];
  for (const [t, id] of Object.entries(nj.model.vocab)) byId[id] = t;
  for (const [t, id] of Object.entries(oldVocab))
    if (nj.model.vocab[t] !== id)
      throw internal(`extendBpe moved token ${JSON.stringify(t)} from id ${id} to ${nj.model.vocab[t]}`);
  const rank = new Map((merges as string[]).map((m, i) => [m, i]));
  const pieces = (id: number): number[] => applyMerges([...(byId[id] ?? "")], rank).map((sym) => oldVocab[sym]!);
  return { tokenizer, pieces };
}
