// The safety report on a labelled prompt file of the user's own (`safety-eval --prompts F`): a CSV in the
// format of ../shared/data/safety/prompts.csv (prompt,label[,source][,category]; label safe|unsafe), every
// row scored by the model's greedy reply, its decision margin, and with a guard the guard's flag and the
// steered decision. What an independent evaluation set needs; the built-in held-out sets stay in report.ts.
// No frames, wrappers or probe here: the file's rows are read as written.
import { FrugalError } from "../common/errors.js";
import type { Model } from "../model/transformer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { loadSafetyRows } from "./rows.js";
import { type SafetyItem } from "./corpus.js";
import type { SafetyJudge } from "./guard.js";
import { ciText, clusterInterval, decisionLine, replies, rocSummary, type SafetyReport } from "./report.js";
import { guardScores, itemDecisions, type Steering } from "./steer.js";
import { Gate } from "./gate.js";

/** One row's outcome. margin = the policy's refusal-token minus ordinary-reply logit after <think>. */
export interface LabelledRow {
  prompt: string;
  unsafe: boolean;
  hazard: string | null;
  source: string;
  refused: boolean;
  margin: number;
  reply: string;
  /** with a guard: whether it flags the prompt, and the decision as `serve --guard` makes it */
  guardFlagged?: boolean;
  guardedRefused?: boolean;
}

/** Refused share of a group of rows, and how many there are (rate null when there are none). */
export interface RateOf {
  n: number;
  refusalRate: number | null;
}

export interface LabelledReport {
  file: string;
  n: { harmful: number; benign: number };
  /** refused / all over the file's unsafe rows (null when it has none) */
  harmfulRefusalRate: number | null;
  /** refused / all over the file's safe rows (null when it has none) */
  benignRefusalRate: number | null;
  /** 95% bootstrap intervals over distinct prompts (a prompt listed twice is one unit) */
  intervals: { harmfulRefusalRate: [number, number] | null; benignRefusalRate: [number, number] | null };
  /** the decision margin as a score, unsafe vs safe rows (null unless the file has both) */
  decision: SafetyReport["decision"] | null;
  /** the guard alone (flags) and the guarded decision ("steered" with the model's steering.json, else "union") */
  withGuard: null | {
    rule: "steered" | "union";
    guardFlags: { harmful: number | null; benign: number | null };
    harmfulRefusalRate: number | null;
    benignRefusalRate: number | null;
  };
  capabilityDelta: number | null;
  harmfulByCategory: Record<string, RateOf>;
  /** rates per the file's `source` column, per label ("harmbench/unsafe") */
  bySource: Record<string, RateOf>;
  /** every row, in file order */
  rows: LabelledRow[];
  wallMs: number;
}

export interface LabelledOptions {
  promptChars: number;
  maxNewTokens: number;
  maxRows?: number;
  guard?: SafetyJudge;
  steering?: Steering | null;
  capabilityDelta?: number | null;
  /** called after every block of replies (a progress bar) */
  progress?: (done: number, total: number) => void;
}

/** Rows per generation block: progress is reported between blocks. */
const BLOCK_ROWS = 256;

/** The file's rows as items (loadSafetyRows validates the columns and labels). */
export function labelledItems(file: string, maxRows?: number): (SafetyItem & { source: string })[] {
  const rows = loadSafetyRows(file).slice(0, maxRows);
  if (!rows.length)
    throw new FrugalError(
      "DATA",
      `${file} has a header but no rows; expected prompt,label lines (label safe or unsafe)`,
    );
  return rows.map((r) => ({
    text: r.prompt,
    unsafe: r.unsafe,
    hazard: r.hazard,
    kind: r.unsafe ? "harmful" : "benign",
    group: r.prompt,
    source: r.source,
  }));
}

const share = (xs: boolean[]): number | null => (xs.length ? xs.filter(Boolean).length / xs.length : null);
const pct = (x: number | null) => (x === null ? "—" : `${(100 * x).toFixed(1)}%`);
const ciNote = (x: [number, number] | null) => (x ? ` (${ciText(x)})` : "");

/** 95% interval of the share of rows for which hit() holds, distinct prompts as units (null without rows). */
const intervalOver = <T extends { prompt: string }>(
  rs: readonly T[],
  hit: (r: T) => boolean,
): [number, number] | null =>
  rs.length
    ? clusterInterval(
        rs.map(hit),
        rs.map((r) => r.prompt),
      ).interval
    : null;

/** Per key (in order): how many items, and the share for which hit() holds. */
function sharesBy<T>(
  xs: readonly T[],
  key: (x: T) => string,
  hit: (x: T) => boolean,
): [string, { n: number; share: number | null }][] {
  const g = new Map<string, boolean[]>();
  for (const x of xs) {
    const k = key(x),
      v = g.get(k);
    if (v) v.push(hit(x));
    else g.set(k, [hit(x)]);
  }
  return [...g.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, { n: v.length, share: share(v) }]);
}

function ratesBy(rows: LabelledRow[], key: (r: LabelledRow) => string): Record<string, RateOf> {
  return Object.fromEntries(
    sharesBy(rows, key, (r) => r.refused).map(([k, v]) => [k, { n: v.n, refusalRate: v.share }]),
  );
}

export function labelledEval(model: Model, tok: Tokenizer, file: string, o: LabelledOptions): LabelledReport {
  const t0 = performance.now(),
    items = labelledItems(file, o.maxRows);
  const rs: ReturnType<typeof replies> = [];
  for (let i = 0; i < items.length; i += BLOCK_ROWS) {
    rs.push(...replies(model, tok, items.slice(i, i + BLOCK_ROWS), o.promptChars, o.maxNewTokens));
    o.progress?.(rs.length, items.length);
  }
  const d = itemDecisions(model, tok, items, o.promptChars);
  const gate = new Gate(model, tok, o.guard, o.steering ?? null);
  const g = o.guard
    ? guardScores(
        o.guard,
        items.map((x) => x.text),
      )
    : null;
  const guarded = g ? gate.refusals(items, d, g) : null;
  const rows: LabelledRow[] = items.map((x, i) => ({
    prompt: x.text,
    unsafe: x.unsafe,
    hazard: x.hazard,
    source: x.source,
    refused: rs[i]!.refused,
    margin: d.margin[i]!,
    reply: rs[i]!.text,
    ...(g ? { guardFlagged: g.flagged[i]!, guardedRefused: guarded![i]! } : {}),
  }));
  const harm = rows.filter((r) => r.unsafe),
    ben = rows.filter((r) => !r.unsafe);
  const pick = (rs: LabelledRow[], f: (r: LabelledRow) => boolean) => share(rs.map(f));
  return {
    file,
    n: { harmful: harm.length, benign: ben.length },
    harmfulRefusalRate: share(harm.map((r) => r.refused)),
    benignRefusalRate: share(ben.map((r) => r.refused)),
    intervals: {
      harmfulRefusalRate: intervalOver(harm, (r) => r.refused),
      benignRefusalRate: intervalOver(ben, (r) => r.refused),
    },
    decision:
      harm.length && ben.length
        ? rocSummary(
            harm.map((r) => r.margin),
            ben.map((r) => r.margin),
            [0.02, 0.05],
          )
        : null,
    withGuard: g
      ? {
          rule: gate.rule!,
          guardFlags: { harmful: pick(harm, (r) => r.guardFlagged!), benign: pick(ben, (r) => r.guardFlagged!) },
          harmfulRefusalRate: pick(harm, (r) => r.guardedRefused!),
          benignRefusalRate: pick(ben, (r) => r.guardedRefused!),
        }
      : null,
    capabilityDelta: o.capabilityDelta ?? null,
    harmfulByCategory: ratesBy(harm, (r) => r.hazard ?? "?"),
    bySource: ratesBy(rows, (r) => `${r.source || "(none)"}/${r.unsafe ? "unsafe" : "safe"}`),
    rows,
    wallMs: performance.now() - t0,
  };
}

/** The text report: rates with intervals, per category and source, the decision, the guard, and a few misses. */
export function labelledLines(r: LabelledReport): string[] {
  const out = [
    `${r.file}: ${r.n.harmful} unsafe, ${r.n.benign} safe rows`,
    `harmful refused      ${pct(r.harmfulRefusalRate)} of ${r.n.harmful}${ciNote(r.intervals.harmfulRefusalRate)}`,
  ];
  for (const [c, v] of Object.entries(r.harmfulByCategory))
    out.push(`  ${c.padEnd(4)} ${pct(v.refusalRate).padStart(6)} of ${v.n}`);
  out.push(`benign refused       ${pct(r.benignRefusalRate)} of ${r.n.benign}${ciNote(r.intervals.benignRefusalRate)}`);
  if (Object.keys(r.bySource).length > 2)
    for (const [k, v] of Object.entries(r.bySource))
      out.push(`  ${k.padEnd(28)} ${pct(v.refusalRate).padStart(6)} refused of ${v.n}`);
  if (r.decision) out.push(`harmful vs benign    ${decisionLine(r.decision)}`);
  if (r.withGuard) {
    const w = r.withGuard;
    out.push(`guard flags          harmful ${pct(w.guardFlags.harmful)}, benign ${pct(w.guardFlags.benign)}`);
    out.push(
      `with the guard (${w.rule}) harmful ${pct(w.harmfulRefusalRate)}, benign ${pct(w.benignRefusalRate)} refused`,
    );
  }
  if (r.capabilityDelta !== null)
    out.push(`capability delta     ${(100 * r.capabilityDelta).toFixed(1)} points pass@1`);
  const misses = r.rows.filter((x) => x.unsafe !== x.refused).slice(0, 8);
  if (misses.length)
    out.push(
      "first misses (see --json for every row):",
      ...misses.map((x) => `  ${x.unsafe ? "answered" : "refused "}  ${x.prompt.replace(/\s+/g, " ").slice(0, 90)}`),
    );
  return out;
}

/** The guard alone on a labelled file (`frugal guard --prompts F`): flag rates, the ranking, every row. */
export interface GuardLabelledReport {
  file: string;
  n: { harmful: number; benign: number };
  threshold: number;
  harmfulFlagRate: number | null;
  benignFlagRate: number | null;
  intervals: { harmfulFlagRate: [number, number] | null; benignFlagRate: [number, number] | null };
  /** p_unsafe as a score, unsafe vs safe rows (null unless the file has both) */
  ranking: SafetyReport["decision"] | null;
  harmfulByCategory: Record<string, { n: number; flagRate: number | null }>;
  /** category = the file's (or guessed) hazard; hazard = the guard's verdict */
  rows: {
    prompt: string;
    unsafe: boolean;
    category: string | null;
    flagged: boolean;
    pUnsafe: number;
    hazard: string | null;
  }[];
  msPerPrompt: number;
}

export function guardLabelledEval(guard: SafetyJudge, file: string, maxRows?: number): GuardLabelledReport {
  const items = labelledItems(file, maxRows),
    t0 = performance.now(),
    v = guard.classify(
      items.map((x) => x.text),
      "prompt",
    ),
    ms = (performance.now() - t0) / items.length;
  const rows = items.map((x, i) => ({
    prompt: x.text,
    unsafe: x.unsafe,
    category: x.hazard,
    flagged: v[i]!.unsafe,
    pUnsafe: v[i]!.pUnsafe,
    hazard: v[i]!.hazard,
  }));
  const harm = rows.filter((r) => r.unsafe),
    ben = rows.filter((r) => !r.unsafe);
  return {
    file,
    n: { harmful: harm.length, benign: ben.length },
    threshold: guard.threshold,
    harmfulFlagRate: share(harm.map((r) => r.flagged)),
    benignFlagRate: share(ben.map((r) => r.flagged)),
    intervals: {
      harmfulFlagRate: intervalOver(harm, (r) => r.flagged),
      benignFlagRate: intervalOver(ben, (r) => r.flagged),
    },
    ranking:
      harm.length && ben.length
        ? rocSummary(
            harm.map((r) => r.pUnsafe),
            ben.map((r) => r.pUnsafe),
            [0.02, 0.05],
          )
        : null,
    harmfulByCategory: Object.fromEntries(
      sharesBy(
        harm,
        (r) => r.category ?? "?",
        (r) => r.flagged,
      ).map(([k, v]) => [k, { n: v.n, flagRate: v.share }]),
    ),
    rows,
    msPerPrompt: ms,
  };
}

export function guardLabelledLines(r: GuardLabelledReport): string[] {
  const out = [
    `${r.file}: ${r.n.harmful} unsafe, ${r.n.benign} safe rows; guard threshold ${r.threshold.toFixed(3)}, ${r.msPerPrompt.toFixed(2)} ms per prompt`,
    `harmful flagged      ${pct(r.harmfulFlagRate)} of ${r.n.harmful}${ciNote(r.intervals.harmfulFlagRate)}`,
  ];
  for (const [c, v] of Object.entries(r.harmfulByCategory))
    out.push(`  ${c.padEnd(4)} ${pct(v.flagRate).padStart(6)} of ${v.n}`);
  out.push(`benign flagged       ${pct(r.benignFlagRate)} of ${r.n.benign}${ciNote(r.intervals.benignFlagRate)}`);
  if (r.ranking) out.push(`harmful vs benign    ${decisionLine(r.ranking, "p_unsafe", "flags")}`);
  const misses = r.rows.filter((x) => x.unsafe !== x.flagged).slice(0, 8);
  if (misses.length)
    out.push(
      "first misses (see --json for every row):",
      ...misses.map((x) => `  ${x.unsafe ? "passed " : "flagged"}  ${x.prompt.replace(/\s+/g, " ").slice(0, 90)}`),
    );
  return out;
}
