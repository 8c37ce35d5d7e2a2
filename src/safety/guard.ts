// The guard (frugal's safety reward model): a small causal transformer on byte-level BPE that reads
// "<|user|>prompt<|assistant|>" or "<|assistant|>completion<|end|>" and, from its mean-pooled hidden
// states, predicts one label token: <|safe|> or a hazard <|S1|>…<|S12|> (pooling, not the last position:
// a last-position reading keyed on how a request ends — "Where do I start?" — rather than what it asks). P(unsafe) = 1
// − P(<|safe|>) among the labels; the threshold is
// tuned on the dev split and saved with the checkpoint. Encoded inputs (base64, leetspeak, spaced or
// reversed text) are also read decoded; long inputs are read in windows. Training lives in guard-train.ts.
import { FrugalError } from "../common/errors.js";
import * as E from "../engine/index.js";
import { allgather, shareOf, world } from "../engine/dist.js";
import { readWeights } from "../model/checkpoint.js";
import { loadModelDir } from "../model/load.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { forwardPooled, POOLINGS, type Pooling } from "../model/pooling.js";
import { type Model } from "../model/transformer.js";
import { bpeFromJson, SPECIAL, type Tokenizer } from "../tokenizer/tokenizer.js";
import { wholeRowBatches } from "../train/batch.js";
import { hazardName, hazards, type Hazard } from "./policy.js";
import { SentenceGuard, SentenceGuardConfig, SENTENCES_FILE } from "./sentence-guard.js";
import { WordGuard, WordGuardConfig, WORDS_FILE } from "./word-guard.js";
import type { z } from "zod";

export type GuardMode = "prompt" | "completion";
export const SAFE_LABEL = "<|safe|>";
export const labelTokens = (): string[] => [SAFE_LABEL, ...hazards().map((h) => `<|${h}|>`)];

export interface GuardVerdict {
  unsafe: boolean;
  /** max over the views and windows read */
  pUnsafe: number;
  hazard: Hazard | null;
  hazardName: string | null;
  /** views × windows classified; truncated when a huge input was sampled rather than read whole */
  windows: number;
  truncated: boolean;
  /** a brought guard's categories that frugal's policy leaves out (politics, elections, copyright): never flagged */
  outOfPolicy?: string[];
}

/** What every user of a guard reads: frugal's own (Guard) or a brought generative one (hf-guard.ts). */
export interface SafetyJudge {
  /** P(unsafe) at or above which a text is flagged */
  readonly threshold: number;
  classify(texts: readonly string[], mode?: GuardMode): GuardVerdict[];
}

/** A judge's verdicts on `texts`; under MPI each rank reads its share and all get every verdict (all must call). */
export function classifyShared(judge: SafetyJudge, texts: readonly string[], mode?: GuardMode): GuardVerdict[] {
  if (world().size <= 1) return judge.classify(texts, mode);
  const [a, b] = shareOf(texts.length);
  return allgather(judge.classify(texts.slice(a, b), mode)).flat();
}

/** Adds the label tokens to a frugal BPE tokenizer.json (ids after the existing vocabulary). */
export function withLabelTokens(tok: Tokenizer): Tokenizer {
  const json = structuredClone(tok.toJSON()) as { added_tokens: object[]; model: { vocab: Record<string, number> } };
  let id = tok.vocabSize;
  for (const content of labelTokens()) {
    json.added_tokens.push({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    json.model.vocab[content] = id++;
  }
  return bpeFromJson(json as unknown as Record<string, unknown>);
}

/** The weights file of ensemble member m ≥ 1 inside a guard checkpoint (member 0 is model.safetensors). */
export const memberFile = (m: number) => `member-${m}.safetensors`;

/** Text as the guard reads it: control-token look-alikes defused so input cannot forge a label. */
const defuse = (s: string) => s.replace(/<\|/g, "< |");

/** Token ids of one window (label position last) in the given mode, at most maxLen ids. */
export function guardIds(tok: Tokenizer, text: string, mode: GuardMode, maxLen: number): number[] {
  const body = tok.encode(defuse(text)).slice(0, maxLen - 2);
  return mode === "prompt"
    ? [tok.tokenId(SPECIAL.user), ...body, tok.tokenId(SPECIAL.assistant)]
    : [tok.tokenId(SPECIAL.assistant), ...body, tok.tokenId(SPECIAL.end)];
}

/** Right-padded (B, T) ids and each sequence's length, for forwardPooled (and any read of the last real position). */
export function packGuard(seqs: readonly number[][]): { ids: Int32Array; B: number; T: number; lengths: Int32Array } {
  const T = Math.max(...seqs.map((s) => s.length)),
    B = seqs.length,
    ids = new Int32Array(B * T);
  seqs.forEach((s, b) => ids.set(s, b * T));
  return { ids, B, T, lengths: Int32Array.from(seqs, (s) => s.length) };
}

const B64 = /[A-Za-z0-9+/]{16,}={0,2}/g;
const LEET_BACK: Record<string, string> = {
  "4": "a",
  "3": "e",
  "1": "i",
  "0": "o",
  "5": "s",
  "7": "t",
  "@": "a",
  $: "s",
};

/** The text plus decoded readings of it when it looks encoded. */
export function views(text: string): string[] {
  const out = [text];
  for (const m of text.match(B64) ?? []) {
    const d = Buffer.from(m, "base64").toString("utf8");
    if (d.length >= 8 && /^[\x20-\x7e\s]+$/.test(d)) out.push(d);
  }
  if (/[a-z][013457@$][a-z]/i.test(text)) out.push(text.replace(/[013457@$]/g, (c) => LEET_BACK[c]!));
  if (/(\b\w ){6,}/.test(text)) out.push(text.replace(/(\S) (?=\S( |$))/g, "$1").replace(/ {2,}/g, " "));
  if (/backward|revers/i.test(text)) out.push([...text].reverse().join(""));
  return out;
}

const MAX_WINDOWS = 16;

/** Character windows covering a text (≈ maxLen tokens each); huge texts get evenly spaced samples. */
function windows(text: string, maxLen: number): { parts: string[]; truncated: boolean } {
  const size = maxLen * 3,
    stepC = Math.floor(size * 0.75);
  if (text.length <= size) return { parts: [text], truncated: false };
  const starts: number[] = [];
  for (let s = 0; s < text.length; s += stepC) starts.push(s);
  const pick =
    starts.length <= MAX_WINDOWS
      ? starts
      : Array.from(
          { length: MAX_WINDOWS },
          (_, i) => starts[Math.round((i * (starts.length - 1)) / (MAX_WINDOWS - 1))]!,
        );
  return { parts: pick.map((s) => text.slice(s, s + size)), truncated: pick.length < starts.length };
}

/**
 * A guard checkpoint's English member (frugal.json "words" or "sentences"): its settings and file checked, then
 * loaded by `load`.
 */
function memberOf<C, M>(
  dir: string,
  ckDir: string,
  settings: unknown,
  kind: { key: string; what: string; file: string; schema: z.ZodType<C>; load: (file: string, cfg: C) => M },
): M {
  const cfg = kind.schema.safeParse(settings),
    file = join(ckDir, kind.file);
  if (!cfg.success)
    throw new FrugalError(
      "GUARD",
      `${dir}: frugal.json ${kind.key} is ${JSON.stringify(settings).slice(0, 120)}, not ${kind.what} settings (${cfg.error.issues[0]?.message}); retrain the guard`,
    );
  if (!existsSync(file))
    throw new FrugalError(
      "GUARD",
      `${dir}: frugal.json names a ${kind.what} member but ${kind.file} is missing; copy the whole checkpoint directory or retrain the guard`,
    );
  return kind.load(file, cfg.data);
}

const WORD_MEMBER = {
    key: "words",
    what: "word-vector",
    file: WORDS_FILE,
    schema: WordGuardConfig,
    load: WordGuard.load,
  },
  SENTENCE_MEMBER = {
    key: "sentences",
    what: "sentence",
    file: SENTENCES_FILE,
    schema: SentenceGuardConfig,
    load: SentenceGuard.load,
  };

/**
 * Label probabilities (safe first) with an English member's P(unsafe) `pw` mixed in at weight w, in place:
 * P(safe) ← (1−w)·P(safe) + w·(1−pw); each hazard keeps its share of the unsafe mass.
 */
export function mixMemberVerdict(p: Float32Array, pw: number, w: number): void {
  const unsafe = 1 - p[0]!;
  p[0] = (1 - w) * p[0]! + w * (1 - pw);
  for (let k = 1; k < p.length; k++)
    p[k] = (1 - w) * p[k]! + w * pw * (unsafe > 1e-12 ? p[k]! / unsafe : 1 / (p.length - 1));
}

/**
 * The guard: one model, or an ensemble whose members (same tokenizer and shape, different seeds) each give
 * label probabilities that are averaged — measured to flag more held-out harm at the same benign rate than
 * any one member, because members err on different prompts. A word-vector member (word-guard.ts) and a
 * sentence member (sentence-guard.ts), when there are, each hold their weight's share of each prompt's P(unsafe)
 * (the sentence member's of the final mix, mixed last); the hazard stays the transformers' call.
 */
export class Guard implements SafetyJudge {
  readonly labelIds: number[];
  readonly models: readonly Model[];
  constructor(
    readonly model: Model,
    readonly tok: Tokenizer,
    readonly threshold: number,
    readonly pooling: Pooling = "mean",
    others: readonly Model[] = [],
    readonly words: WordGuard | null = null,
    readonly sentences: SentenceGuard | null = null,
  ) {
    this.labelIds = labelTokens().map((t) => tok.tokenId(t));
    this.models = [model, ...others];
  }

  static load(dir: string): Guard {
    const notGuard = `${dir} is not a guard checkpoint (expected tokenizer.json with label tokens and a tuned threshold in frugal.json); train one with \`frugal run recipes/guard.json\``;
    const ck = loadModelDir(dir, () => new FrugalError("GUARD", notGuard)),
      threshold = ck.meta?.threshold,
      tok = ck.tokenizer;
    if (typeof threshold !== "number") throw new FrugalError("GUARD", notGuard);
    if (tok.kind === "char")
      throw new FrugalError("GUARD", `${dir} has a character tokenizer; a guard uses byte-level BPE`);
    const pooling = (ck.meta?.pooling ?? "mean") as Pooling,
      members = ck.meta?.members ?? 1;
    if (!POOLINGS.includes(pooling))
      throw new FrugalError(
        "GUARD",
        `${dir}: frugal.json pooling is ${JSON.stringify(pooling)}; expected one of ${POOLINGS.join(", ")}`,
      );
    if (typeof members !== "number" || !Number.isInteger(members) || members < 1)
      throw new FrugalError(
        "GUARD",
        `${dir}: frugal.json members is ${JSON.stringify(members)}; expected a whole number ≥ 1`,
      );
    const others = Array.from({ length: members - 1 }, (_, i) => {
      const file = join(ck.dir, memberFile(i + 1));
      if (!existsSync(file))
        throw new FrugalError(
          "GUARD",
          `${dir}: frugal.json says ${members} ensemble members but ${memberFile(i + 1)} is missing; copy the whole checkpoint directory or retrain the guard`,
        );
      return readWeights(ck.model.config, file);
    });
    return new Guard(
      ck.model,
      tok,
      threshold,
      pooling,
      others,
      ck.meta?.words ? memberOf(dir, ck.dir, ck.meta.words, WORD_MEMBER) : null,
      ck.meta?.sentences ? memberOf(dir, ck.dir, ck.meta.sentences, SENTENCE_MEMBER) : null,
    );
  }

  get maxLen(): number {
    return this.model.config.max_position_embeddings;
  }

  /** Label probabilities (safe first, then hazards) of each id sequence, averaged over the members. */
  labelProbs(seqs: number[][]): Float32Array[] {
    const { ids, B, T, lengths } = packGuard(seqs),
      V = this.model.config.vocab_size,
      K = this.labelIds.length;
    const out = seqs.map(() => new Float32Array(K));
    for (const model of this.models) {
      E.noGrad(() => {
        const L = forwardPooled(model, ids, B, T, lengths, this.pooling).data;
        out.forEach((p, b) => {
          const z = this.labelIds.map((id) => L[b * V + id]!),
            mx = Math.max(...z),
            e = z.map((x) => Math.exp(x - mx)),
            sum = e.reduce((a, x) => a + x, 0);
          for (let k = 0; k < K; k++) p[k]! += e[k]! / sum / this.models.length;
        });
        E.endStep();
      });
    }
    return out;
  }

  classify(texts: readonly string[], mode: GuardMode = "prompt"): GuardVerdict[] {
    const seqs: number[][] = [],
      partTexts: string[] = [],
      owner: number[] = [],
      trunc = texts.map(() => false);
    texts.forEach((text, i) => {
      if (typeof text !== "string")
        throw new FrugalError("GUARD", `guard input ${i} must be a string, got ${typeof text}`);
      if (text.trim() === "") return;
      for (const v of views(text)) {
        const w = windows(v, this.maxLen);
        trunc[i] ||= w.truncated;
        for (const part of w.parts) {
          seqs.push(guardIds(this.tok, part, mode, this.maxLen));
          partTexts.push(part);
          owner.push(i);
        }
      }
    });
    // batches of up to 64 windows of like length, each padded only to its own longest
    const probs: Float32Array[] = new Array<Float32Array>(seqs.length);
    for (const rows of wholeRowBatches(
      seqs.map((s) => s.length),
      64,
    ))
      this.labelProbs(rows.map((j) => seqs[j]!)).forEach((p, k) => (probs[rows[k]!] = p));
    // the English members read prompts only (a refusal names the harm too); words first, sentences last
    if (mode === "prompt")
      for (const m of [this.words, this.sentences])
        m?.pUnsafe(partTexts).forEach((pm, j) => mixMemberVerdict(probs[j]!, pm, m.cfg.weight));
    // per text: the window with the lowest P(safe), and how many windows it had (one pass over the windows)
    const best: (Float32Array | undefined)[] = texts.map(() => undefined),
      n = texts.map(() => 0);
    probs.forEach((p, j) => {
      const i = owner[j]!;
      n[i]!++;
      if (!best[i] || p[0]! < best[i]![0]!) best[i] = p;
    });
    const codes = hazards();
    return texts.map((_, i) => {
      const p = best[i];
      if (!p) return { unsafe: false, pUnsafe: 0, hazard: null, hazardName: null, windows: 0, truncated: false }; // empty: nothing asked
      const pUnsafe = 1 - p[0]!;
      let h = 1;
      for (let k = 2; k < p.length; k++) if (p[k]! > p[h]!) h = k;
      const unsafe = pUnsafe >= this.threshold;
      return {
        unsafe,
        pUnsafe,
        hazard: unsafe ? codes[h - 1]! : null,
        hazardName: unsafe ? hazardName(codes[h - 1]!) : null,
        windows: n[i]!,
        truncated: trunc[i]!,
      };
    });
  }
}
