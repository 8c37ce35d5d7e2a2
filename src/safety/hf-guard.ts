// A brought generative guard — Llama Guard 3 (Llama) or Qwen3Guard-Gen (Qwen3) from a Hugging Face directory — as
// frugal's guard: each text goes through the guard's own chat template, the reply is decoded greedily and parsed
// ("unsafe\nS1", "Safety: Unsafe\nCategories: Violent"), P(unsafe) is read from the next-token distribution where
// the verdict word starts, and categories map onto frugal's policy (hf-guards.json); categories outside it
// (elections, copyright, politics) are never flagged. No training of guards here, and no windows over long texts.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { loadModelDir } from "../model/load.js";
import { generate } from "../model/sampler.js";
import { forwardCached, KVCache, type Model } from "../model/transformer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { endId } from "../tokenizer/chat.js";
import { Guard, type GuardMode, type GuardVerdict, type SafetyJudge } from "./guard.js";
import { hazardName, hazards } from "./policy.js";

const Format = z
  .object({
    label: z.string(),
    /** every one of these appears in the guard's chat template */
    detect: z.array(z.string()).min(1),
    /** text the reply starts with before the verdict word ("" for Llama Guard) */
    verdictPrefix: z.string(),
    safe: z.string().min(1),
    unsafe: z.string().min(1),
    /** Qwen3Guard's middle level; frugal counts it as safe (its "loose" reading) */
    controversial: z.string().min(1).optional(),
    /** the line holding the categories ("" = the line after the verdict) */
    categoryPrefix: z.string(),
    /** the guard's category → frugal's hazard code, "jailbreak", or null (outside frugal's policy) */
    categories: z.record(z.string(), z.string().nullable()),
  })
  .strict();
type Format = z.infer<typeof Format>;
const FormatsFile = z.object({ $comment: z.string(), formats: z.record(z.string(), Format) }).strict();

const here = dirname(fileURLToPath(import.meta.url));
const FORMATS_FILE = join(here, "../../src/safety/hf-guards.json");
let formats: Record<string, Format> | null = null;

/** The guard formats frugal reads, by name (hf-guards.json); every mapped category is checked against the policy. */
export function guardFormats(): Record<string, Format> {
  if (formats) return formats;
  const f = FormatsFile.parse(JSON.parse(readFileSync(FORMATS_FILE, "utf8"))).formats;
  const known = new Set([...hazards(), "jailbreak"]);
  for (const [name, fmt] of Object.entries(f))
    for (const [cat, code] of Object.entries(fmt.categories))
      if (code !== null && !known.has(code))
        throw new FrugalError("POLICY", `${FORMATS_FILE}: ${name} maps "${cat}" to ${code}, which policy.json lacks`);
  return (formats = f);
}

/** The format whose markers all appear in a chat template, or null. */
export function detectFormat(template: string): string | null {
  for (const [name, f] of Object.entries(guardFormats())) if (f.detect.every((d) => template.includes(d))) return name;
  return null;
}

export interface ParsedReply {
  verdict: "safe" | "unsafe" | "controversial" | null;
  categories: string[];
}

/** Reads a guard's reply: its verdict word and its category list (as the guard names them). */
export function parseReply(f: Format, text: string): ParsedReply {
  const lines = text
    .trim()
    .split("\n")
    .map((l) => l.trim());
  const first = lines[0]?.startsWith(f.verdictPrefix) ? lines[0].slice(f.verdictPrefix.length).trim() : "";
  const verdict =
    first === f.unsafe ? "unsafe" : first === f.safe ? "safe" : first === f.controversial ? "controversial" : null;
  const line = f.categoryPrefix ? lines.find((l) => l.startsWith(f.categoryPrefix)) : lines[1];
  const categories = (line?.slice(f.categoryPrefix.length) ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  return { verdict, categories };
}

type Message = { role: string; content: string };

/** Whether token text `piece`, after `before`, starts the verdict word: the word it starts, or null. */
function startsWord(f: Format, before: string, piece: string): "safe" | "unsafe" | "controversial" | null {
  const s = (before + piece).trimStart();
  if (!s.startsWith(f.verdictPrefix)) return null;
  const r = s.slice(f.verdictPrefix.length).trim();
  if (!r) return null;
  const words = { safe: f.safe, unsafe: f.unsafe, controversial: f.controversial } as const;
  const hits = (Object.keys(words) as (keyof typeof words)[]).filter((k) => {
    const w = words[k];
    return w !== undefined && (w.startsWith(r) || r.startsWith(w) || r.startsWith(w + "\n"));
  });
  return hits.length === 1 ? hits[0]! : null;
}

/** A brought generative guard behind frugal's guard interface. */
export class HfGuard implements SafetyJudge {
  private readonly pieces: string[];
  /** by the reply text before the verdict: the tokens that start each verdict word (a scan of the vocabulary) */
  private readonly candidates = new Map<string, [number, "safe" | "unsafe" | "controversial"][]>();
  readonly format: Format;
  constructor(
    readonly model: Model,
    readonly tok: Tokenizer,
    readonly formatName: string,
    readonly threshold = 0.5,
    readonly maxNewTokens = 64,
  ) {
    this.format = guardFormats()[formatName]!;
    this.pieces = Array.from({ length: model.config.vocab_size }, (_, id) =>
      id < tok.vocabSize ? tok.decode([id]) : "",
    );
  }

  static load(dir: string, threshold = 0.5): HfGuard {
    const ck = loadModelDir(dir),
      chat = ck.tokenizer.chat;
    const known = Object.entries(guardFormats())
      .map(([n, f]) => `${n} (${f.label}: a chat template containing ${f.detect.map((d) => `"${d}"`).join(" and ")})`)
      .join("; ");
    if (!chat)
      throw new FrugalError("GUARD", `${dir}: tokenizer_config.json has no chat_template; a brought guard needs one`);
    const forced = process.env.FRUGAL_GUARD_FORMAT;
    if (forced !== undefined && !(forced in guardFormats()))
      throw new FrugalError(
        "GUARD",
        `FRUGAL_GUARD_FORMAT is "${forced}"; expected one of ${Object.keys(guardFormats())}`,
      );
    const name = forced ?? detectFormat(JSON.stringify(chat.config.chat_template));
    if (!name)
      throw new FrugalError(
        "GUARD",
        `${dir}: its chat template is not one of the guard formats frugal reads: ${known}. Point --guard at a ` +
          "Llama Guard 3 or Qwen3Guard-Gen directory, or at a guard frugal trained (recipes/guard.json); set " +
          "FRUGAL_GUARD_FORMAT to read a template these markers miss",
      );
    return new HfGuard(ck.model, ck.tokenizer, name, threshold);
  }

  /** The guard's input for one text: a user prompt, or an assistant reply after an empty user turn. */
  promptIds(text: string, mode: GuardMode): number[] {
    const chat = this.tok.chat!;
    const msgs: Message[] =
      mode === "prompt"
        ? [{ role: "user", content: text }]
        : [
            { role: "user", content: "" },
            { role: "assistant", content: text },
          ];
    // templates read content as a string (Qwen3Guard, Llama Guard 3-8B) or as typed parts (Llama Guard 3-1B): a
    // template that drops the string form renders without the text, so the text must be found in what it rendered
    const asParts = msgs.map((m) => ({ ...m, content: [{ type: "text", text: m.content }] }));
    let rendered: string | null = null;
    for (const form of [msgs, asParts]) {
      try {
        const r = chat.renderMessages(form, true);
        if (r.includes(text)) {
          rendered = r;
          break;
        }
      } catch {
        /* the other form */
      }
    }
    if (rendered === null)
      throw new FrugalError(
        "GUARD",
        `${this.format.label}: its chat template renders neither message form with the text in it; is it the guard's own template?`,
      );
    return this.tok.encode(rendered);
  }

  /**
   * P(unsafe) where the reply's verdict word starts: the next-token mass on the tokens that start each word. A reply
   * that never reaches its verdict word (off format) is read at the verdict prefix, forced after the prompt.
   */
  private pUnsafe(prompt: number[], reply: number[]): number {
    const f = this.format;
    let k = 0;
    for (; k < reply.length; k++) if (startsWord(f, this.tok.decode(reply.slice(0, k)), this.pieces[reply[k]!]!)) break;
    const reached = k < reply.length,
      context = reached ? reply.slice(0, k) : this.tok.encode(f.verdictPrefix),
      before = reached ? this.tok.decode(context) : f.verdictPrefix;
    const ids = [...prompt, ...context],
      cache = new KVCache(this.model.config, 1, ids.length);
    const logits = forwardCached(
      this.model,
      cache,
      Int32Array.from(ids),
      Int32Array.of(0),
      Int32Array.of(0),
      ids.length,
      true,
    ).data;
    const mass = { safe: 0, unsafe: 0, controversial: 0 };
    let mx = -Infinity;
    for (const x of logits) mx = Math.max(mx, x);
    for (const [id, w] of this.verdictTokens(before)) mass[w] += Math.exp(logits[id]! - mx);
    const total = mass.safe + mass.unsafe + mass.controversial;
    return total > 0 ? mass.unsafe / total : 0;
  }

  /** The tokens that, after `before`, start a verdict word, with the word: found once per `before`. */
  private verdictTokens(before: string): [number, "safe" | "unsafe" | "controversial"][] {
    let c = this.candidates.get(before);
    if (!c) {
      c = [];
      this.pieces.forEach((piece, id) => {
        const w = piece ? startsWord(this.format, before, piece) : null;
        if (w) c!.push([id, w]);
      });
      this.candidates.set(before, c);
    }
    return c;
  }

  classify(texts: readonly string[], mode: GuardMode = "prompt"): GuardVerdict[] {
    const f = this.format,
      asked = texts.map((t, i) => ({ t, i })).filter(({ t }) => t.trim() !== "");
    const prompts = asked.map(({ t }) => this.promptIds(t, mode));
    const replies = generate(
      this.model,
      prompts,
      prompts.map(() => 0),
      { temperature: 0, maxNewTokens: this.maxNewTokens, stopTokens: [endId(this.tok)], batch: 8 },
    );
    const out: GuardVerdict[] = texts.map(() => ({
      unsafe: false,
      pUnsafe: 0,
      hazard: null,
      hazardName: null,
      windows: 0,
      truncated: false,
    }));
    asked.forEach(({ i }, j) => {
      const text = this.tok.decode(replies[j]!.tokens),
        parsed = parseReply(f, text);
      out[i] = this.verdict(parsed, this.pUnsafe(prompts[j]!, replies[j]!.tokens));
    });
    return out;
  }

  /** The verdict in frugal's terms: categories outside the policy are not flagged, whatever the guard's P(unsafe). */
  private verdict(parsed: ParsedReply, p: number): GuardVerdict {
    const mapped = parsed.categories.map((c) => this.format.categories[c]),
      outOfPolicy = parsed.categories.filter((_, k) => mapped[k] === null);
    const onlyOutside = parsed.categories.length > 0 && outOfPolicy.length === parsed.categories.length;
    const pUnsafe = onlyOutside ? 0 : p,
      unsafe = pUnsafe >= this.threshold;
    const code = mapped.find((c): c is string => typeof c === "string");
    return {
      unsafe,
      pUnsafe,
      hazard: unsafe && code && code !== "jailbreak" ? code : null,
      hazardName: !unsafe || !code ? null : code === "jailbreak" ? "jailbreak attempt" : hazardName(code),
      windows: 1,
      truncated: false,
      ...(outOfPolicy.length ? { outOfPolicy } : {}),
    };
  }
}

/**
 * A guard by where it is: "hf:DIR" or a Hugging Face directory (no frugal.json) is a brought generative guard;
 * otherwise a guard frugal trained.
 */
export function loadGuard(spec: string, threshold?: number): SafetyJudge {
  const hf = spec.startsWith("hf:"),
    dir = hf ? spec.slice(3) : spec;
  if (hf || (!existsSync(join(dir, "frugal.json")) && existsSync(join(dir, "config.json"))))
    return HfGuard.load(dir, threshold);
  return Guard.load(dir);
}
