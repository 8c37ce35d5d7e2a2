// The labelled safety prompts: a CSV (prompt,label[,source][,category]) read in place, never copied — by
// default ../shared/data/safety/prompts.csv beside the repository, or the file FRUGAL_SAFETY_DATA names —
// split three ways by a hash of the prompt (train 80% / dev 10% for tuning / test 10% for reports), and given
// a hazard code where the CSV has none (lists/hazard-rules.json). No drawing or reframing here (corpus.ts).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { FrugalError } from "../common/errors.js";
import { repoRoot } from "../common/files.js";
import { fnv1a } from "../common/hash.js";
import { HAZARD_CATEGORIES, HAZARD_RULES } from "./lists.js";
import { hazards, type Hazard } from "./policy.js";

export type SafetySplit = "train" | "dev" | "test";
export interface SafetyRow {
  prompt: string;
  unsafe: boolean;
  source: string;
  hazard: Hazard | null;
}

/** The one setting for where the safety data lives: FRUGAL_SAFETY_DATA, else ../shared beside the repository. */
export function defaultDataFile(): string {
  return process.env.FRUGAL_SAFETY_DATA || join(repoRoot, "../shared/data/safety/prompts.csv");
}

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

let rowsCache: { file: string; rows: SafetyRow[] } | null = null;

export function loadSafetyRows(file = defaultDataFile()): SafetyRow[] {
  if (rowsCache?.file === file) return rowsCache.rows;
  if (!existsSync(file))
    throw new FrugalError(
      "DATA",
      `safety data not found at ${file}; it lives in ../shared/data/safety/prompts.csv beside the repository (set FRUGAL_SAFETY_DATA to another copy)`,
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
  rowsCache = { file, rows };
  return rows;
}

const splitCache = new Map<string, { all: SafetyRow[]; unsafe: SafetyRow[]; safe: SafetyRow[] }>();

/** Rows of one split (cached: drawing examples reads these lists thousands of times). */
export function splitRows(split: SafetySplit, file = defaultDataFile()) {
  const k = `${file}|${split}`;
  let c = splitCache.get(k);
  if (!c) {
    const all = loadSafetyRows(file).filter((r) => splitOfPrompt(r.prompt) === split);
    splitCache.set(k, (c = { all, unsafe: all.filter((r) => r.unsafe), safe: all.filter((r) => !r.unsafe) }));
  }
  return c;
}
export function rowsOf(split: SafetySplit, file?: string): SafetyRow[] {
  return splitRows(split, file).all;
}
