// The labelled safety prompts: CSVs (prompt,label[,source][,category]) read in place, never copied — by
// default ../shared/data/safety/prompts.csv and more_prompts.csv beside the repository, or the files
// FRUGAL_SAFETY_DATA names — split three ways by a hash of the prompt (train 80% / dev 10% for tuning / test
// 10% for reports), given a hazard code where the CSV has none (lists/hazard-rules.json), with whole sources
// held out on request (leave-one-source-out). No reframing here (corpus.ts).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { FrugalError } from "../common/errors.js";
import { repoRoot } from "../common/files.js";
import { fnv1a } from "../common/hash.js";
import type { Rng } from "../common/rng.js";
import { HAZARD_CATEGORIES, HAZARD_RULES } from "./lists.js";
import { hazards, type Hazard } from "./policy.js";

export type SafetySplit = "train" | "dev" | "test";
export interface SafetyRow {
  prompt: string;
  unsafe: boolean;
  source: string;
  hazard: Hazard | null;
}

/**
 * The one setting for where the safety data lives: FRUGAL_SAFETY_DATA (one CSV, or several joined by ":"),
 * else prompts.csv and more_prompts.csv in ../shared/data/safety beside the repository.
 */
export function defaultDataFiles(): string[] {
  const env = process.env.FRUGAL_SAFETY_DATA;
  if (env) return env.split(":").filter(Boolean);
  const dir = join(repoRoot, "../shared/data/safety");
  return [join(dir, "prompts.csv"), join(dir, "more_prompts.csv")];
}
/** The first data file (tests skip when it is absent). */
export const defaultDataFile = (): string => defaultDataFiles()[0]!;

export function splitOfPrompt(prompt: string): SafetySplit {
  const h =
    fnv1a(
      prompt
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, " ")
        .trim(),
    ) % 10;
  return h === 0 ? "test" : h === 1 ? "dev" : "train";
}

/**
 * Hazard code for an unsafe prompt: the CSV's category where it names one (a policy code "S9" or a HarmBench category),
 * else the first matching rule, else S2.
 */
export function weakHazard(prompt: string, category = ""): Hazard {
  if (HAZARD_CATEGORIES[category]) return HAZARD_CATEGORIES[category]!;
  if (hazards().includes(category)) return category;
  for (const [code, re] of HAZARD_RULES) if (re.test(prompt)) return code;
  return "S2";
}

const rowsCache = new Map<string, SafetyRow[]>();

export function loadSafetyRows(file = defaultDataFile()): SafetyRow[] {
  const cached = rowsCache.get(file);
  if (cached) return cached;
  if (!existsSync(file))
    throw new FrugalError(
      "DATA",
      `safety data not found at ${file}; it lives in ../shared/data/safety/ beside the repository (set FRUGAL_SAFETY_DATA to other copies, several joined by ":")`,
    );
  let records: Record<string, string>[];
  try {
    records = parse(readFileSync(file, "utf8"), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  } catch (e) {
    throw new FrugalError(
      "DATA",
      `${file} is not a CSV with a header line prompt,label[,source][,category] (${(e as Error).message.slice(0, 160)})`,
    );
  }
  const rows = records.map((r, i) => {
    if (typeof r.prompt !== "string" || (r.label !== "safe" && r.label !== "unsafe"))
      throw new FrugalError(
        "DATA",
        `${file} row ${i + 2}: expected columns prompt,label(safe|unsafe),source,category, got ${JSON.stringify(r).slice(0, 120)}`,
      );
    if (!r.prompt.trim())
      throw new FrugalError("DATA", `${file} row ${i + 2}: the prompt is empty; remove the row or fill it in`);
    const unsafe = r.label === "unsafe";
    return {
      prompt: r.prompt,
      unsafe,
      source: r.source ?? "",
      hazard: unsafe ? weakHazard(r.prompt, r.category) : null,
    };
  });
  rowsCache.set(file, rows);
  return rows;
}

/** Sources whose safe rows are built to look dangerous (reported apart from ordinary prompts, looser targets). */
export const LOOKALIKE_SOURCE = /contrast|lookalike|look-alike/i;

/** Sources held out of every split (leave-one-source-out); set by holdOutSources. */
let heldOut = new Set<string>();
const splitCache = new Map<string, SplitRows>();

/** Every row of the data files, sources held out included, in file order. */
export const allRows = (): SafetyRow[] => defaultDataFiles().flatMap((f) => loadSafetyRows(f));

/** The data's sources, in order of first appearance. */
export const sourcesOf = (rows: readonly SafetyRow[]): string[] => [...new Set(rows.map((r) => r.source))];

/** The names among `sources` that no row of the data has. */
export function unknownSources(sources: readonly string[]): string[] {
  const known = new Set(sourcesOf(allRows()));
  return sources.filter((s) => !known.has(s));
}

/**
 * Leaves whole sources out of every split until the returned function is called (which restores the previous
 * set): training, tuning and the built-in reports then never see them. An unknown source is an error.
 */
export function holdOutSources(sources: readonly string[]): () => void {
  const unknown = unknownSources(sources);
  if (unknown.length)
    throw new FrugalError(
      "DATA",
      `unknown safety source(s) ${unknown.join(", ")}; the data has: ${sourcesOf(allRows()).join(", ")}`,
    );
  const before = heldOut;
  heldOut = new Set(sources);
  splitCache.clear();
  return () => {
    heldOut = before;
    splitCache.clear();
  };
}
export const heldOutSources = (): string[] => [...heldOut];

interface SplitRows {
  all: SafetyRow[];
  unsafe: SafetyRow[];
  safe: SafetyRow[];
  /** per source, its unsafe and its safe rows, and the sqrt(size) weights rows are drawn by */
  bySource: { unsafe: SourceRows; safe: SourceRows };
}
interface SourceRows {
  groups: SafetyRow[][];
  cumWeight: number[];
}

function bySource(rows: readonly SafetyRow[]): SourceRows {
  const g = new Map<string, SafetyRow[]>();
  for (const r of rows) {
    const group = g.get(r.source);
    if (group) group.push(r);
    else g.set(r.source, [r]);
  }
  const groups = [...g.values()];
  let acc = 0;
  return { groups, cumWeight: groups.map((x) => (acc += Math.sqrt(x.length))) };
}

/** Rows of one split, held-out sources left out (cached: drawing examples reads these lists thousands of times). */
export function splitRows(split: SafetySplit): SplitRows {
  let c = splitCache.get(split);
  if (!c) {
    const all = allRows().filter((r) => !heldOut.has(r.source) && splitOfPrompt(r.prompt) === split);
    const unsafe = all.filter((r) => r.unsafe),
      safe = all.filter((r) => !r.unsafe);
    c = { all, unsafe, safe, bySource: { unsafe: bySource(unsafe), safe: bySource(safe) } };
    splitCache.set(split, c);
  }
  return c;
}
export function rowsOf(split: SafetySplit): SafetyRow[] {
  return splitRows(split).all;
}

/**
 * One row of a split: a source first, with weight sqrt(its rows), then a row of it, so that a large source
 * (25K Alpaca instructions) does not drown a small one (100 SimpleSafetyTests questions) and no one style
 * decides.
 */
export function drawRow(rng: Rng, split: SafetySplit, unsafe: boolean): SafetyRow {
  const s = splitRows(split).bySource[unsafe ? "unsafe" : "safe"];
  if (!s.groups.length)
    throw new FrugalError("DATA", `the ${split} split has no ${unsafe ? "unsafe" : "safe"} rows left to draw`);
  const u = rng.next() * s.cumWeight.at(-1)!;
  const i = s.cumWeight.findIndex((w) => u < w);
  return rng.pick(s.groups[i < 0 ? s.groups.length - 1 : i]!);
}
