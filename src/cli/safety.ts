// `frugal guard TEXT | --file F [--lines] [--completion] | --prompts F.csv [--json]` and
// `frugal safety-eval --model DIR [--guard DIR] [--baseline DIR --task T] [--prompts F.csv] [--json]`.
// The guard defaults to the speedrun's (runs/mini-r1/stages/guard/checkpoint) when that exists.
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { loadModelDir } from "../model/load.js";
import { loadGuard } from "../safety/hf-guard.js";
import { isMain } from "../engine/dist.js";
import type { SafetyJudge } from "../safety/guard.js";
import { progress } from "../common/progress.js";
import {
  guardLabelledEval,
  guardLabelledLines,
  labelledEval,
  labelledItems,
  labelledLines,
} from "../safety/labelled.js";
import { formatLoso, readLoso, type LosoReport } from "../safety/loso.js";
import { decisionLine, intervalNote, safetyEval, withGuardLine, type SafetyReport } from "../safety/report.js";
import { steeringFor } from "../safety/steer.js";
import { getTask } from "../tasks/index.js";
import { evaluate } from "../tasks/eval.js";
import { positiveInt } from "./bench.js";

const DEFAULT_GUARD = "runs/mini-r1/stages/guard/checkpoint";

export function guardDir(given?: string): string {
  const dir = given ?? process.env.FRUGAL_GUARD ?? DEFAULT_GUARD;
  if (!existsSync(dir.replace(/^hf:/, "")))
    throw new FrugalError(
      "GUARD",
      `no guard at ${dir}; pass --guard DIR (a guard stage's checkpoint, or hf:DIR for Llama Guard 3 or Qwen3Guard-Gen) or train one with \`npm run speedrun\``,
    );
  return dir;
}

function readInput(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new FrugalError(
      "INPUT",
      `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

export function registerSafety(program: Command): void {
  program
    .command("guard [text]")
    .description("classify a prompt (or a completion) as safe or unsafe with its hazard category")
    .option("--guard <dir>", "guard checkpoint directory, or hf:DIR (Llama Guard 3, Qwen3Guard-Gen)", undefined)
    .option("--model <dir>", "the same as --guard (a brought guard: --model hf:DIR)")
    .option("--file <f>", "read the text from a file (the whole file is one text)")
    .option("--lines", "with --file: one text per line")
    .option("--completion", "judge a completion (reasoning + answer) rather than a prompt")
    .option(
      "--prompts <file>",
      "score a labelled CSV of your own (prompt,label[,source][,category]; label safe or unsafe): flag rates with intervals, per category, the ranking's AUC",
    )
    .option("--json", "JSON output")
    .action(guardAction);

  program
    .command("safety-eval")
    .description(
      "refusal rates of a model on held-out harmful, benign, look-alike and jailbreak prompts, and its capability against a baseline",
    )
    .requiredOption("--model <dir>", "the (safe) model checkpoint")
    .option("--guard <dir>", "guard checkpoint: also judge every reply")
    .option("--baseline <dir>", "the plain model, for capabilityDelta")
    .option("--task <name>", "reasoning task for capabilityDelta", "addition")
    .option("--max-benign <n>", "benign test prompts", "300")
    .option("--max-per-set <n>", "cap every other held-out set (quick checks)")
    .option("--prompt-chars <n>", "prompts are cut to this many characters (as in training)", "140")
    .option("--max-new-tokens <n>", "room for reasoning + refusal", "176")
    .option(
      "--prompts <file>",
      "score your own labelled prompts instead of the built-in held-out sets: a CSV like ../shared/data/safety/prompts.csv (prompt,label[,source][,category]; label safe or unsafe; category an S-code or a HarmBench category)",
    )
    .option("--max-rows <n>", "with --prompts: only the first n rows")
    .option("--json", "JSON output")
    .action(safetyEvalAction);
}

interface GuardFlags {
  guard?: string;
  model?: string;
  file?: string;
  lines?: boolean;
  completion?: boolean;
  prompts?: string;
  json?: boolean;
}

/** `frugal guard`: one text, a file (or its lines), or a labelled CSV. */
function guardAction(text: string | undefined, o: GuardFlags): void {
  if (o.model !== undefined && o.guard !== undefined)
    throw new FrugalError("INPUT", "--model and --guard name the same thing; give one of them");
  o.guard ??= o.model;
  if ([text, o.file, o.prompts].filter((x) => x !== undefined).length !== 1)
    throw new FrugalError("INPUT", "give one of TEXT, --file F or --prompts F.csv");
  if (o.prompts !== undefined) {
    if (o.lines || o.completion)
      throw new FrugalError(
        "INPUT",
        "--lines and --completion apply to TEXT or --file; --prompts reads a labelled CSV of prompts",
      );
    checkPrompts(o.prompts);
    const dir = guardDir(o.guard),
      r = guardLabelledEval(loadGuard(dir), o.prompts),
      loso = readLoso(dir);
    if (o.json) console.log(JSON.stringify({ ...r, leaveOneSourceOut: loso }));
    else for (const line of [...guardLabelledLines(r), ...losoLines(loso)]) console.log(line);
    return;
  }
  const raw = o.file !== undefined ? readInput(o.file) : text!;
  const texts = o.lines ? raw.split(/\r?\n/).filter((l) => l.trim() !== "") : [raw];
  const g = loadGuard(guardDir(o.guard)),
    t0 = performance.now();
  const verdicts = g.classify(texts, o.completion ? "completion" : "prompt");
  const msPerText = (performance.now() - t0) / Math.max(1, texts.length);
  if (o.json) {
    const rows = verdicts.map((v, i) => ({ ...v, chars: texts[i]!.length, threshold: g.threshold, msPerText }));
    console.log(JSON.stringify(o.lines ? rows : rows[0]));
    return;
  }
  verdicts.forEach((v, i) => {
    const what = v.unsafe ? `UNSAFE  ${v.hazard} ${v.hazardName}` : "safe";
    console.log(
      `${what}  (p_unsafe ${v.pUnsafe.toFixed(3)}, threshold ${g.threshold.toFixed(3)}${v.truncated ? ", huge input sampled in windows" : ""})${o.lines ? `  ${texts[i]!.slice(0, 60)}` : ""}`,
    );
  });
}

interface SafetyEvalFlags {
  model: string;
  guard?: string;
  baseline?: string;
  task: string;
  maxBenign: string;
  maxPerSet?: string;
  promptChars: string;
  maxNewTokens: string;
  prompts?: string;
  maxRows?: string;
  json?: boolean;
}

/** `frugal safety-eval`: the report on the built-in held-out sets, or on --prompts F. */
function safetyEvalAction(o: SafetyEvalFlags, cmd: Command): void {
  if (o.maxRows !== undefined && o.prompts === undefined)
    throw new FrugalError("INPUT", "--max-rows applies to --prompts F; add --prompts or drop --max-rows");
  const setSizes = [
    cmd.getOptionValueSource("maxBenign") === "cli" && "--max-benign",
    o.maxPerSet !== undefined && "--max-per-set",
  ].filter(Boolean);
  if (o.prompts !== undefined && setSizes.length)
    throw new FrugalError(
      "INPUT",
      `${setSizes.join(" and ")} size the built-in held-out sets, but --prompts reads every row of your file instead; drop ${setSizes.join(" and ")}, or use --max-rows n to read only the first n rows`,
    );
  if (o.prompts !== undefined) checkPrompts(o.prompts, o.maxRows); // before loading models: a bad file fails fast
  const t = loadModelDir(o.model),
    guard = o.guard ? loadGuard(guardDir(o.guard)) : undefined;
  let capabilityDelta: number | null = null;
  if (o.baseline) {
    const task = getTask(o.task),
      b = loadModelDir(o.baseline),
      ev = { nProblems: 100, k: 4, maxNewTokens: 96 };
    capabilityDelta = evaluate(t.model, t.tokenizer, task, ev).pass1 - evaluate(b.model, b.tokenizer, task, ev).pass1;
  }
  const loso = o.guard ? readLoso(o.guard) : null;
  if (o.prompts !== undefined) {
    labelledCommand(o.prompts, t, guard, o, capabilityDelta, loso);
    return;
  }
  const r = safetyEval(t.model, t.tokenizer, {
    promptChars: positiveInt("--prompt-chars", o.promptChars),
    maxBenign: positiveInt("--max-benign", o.maxBenign),
    maxPerSet: o.maxPerSet === undefined ? undefined : positiveInt("--max-per-set", o.maxPerSet),
    maxNewTokens: positiveInt("--max-new-tokens", o.maxNewTokens),
    guard,
    steering: guard ? steeringFor(o.model, guard) : null,
    capabilityDelta,
  });
  if (!isMain()) return; // under mpirun the ranks split the prompts; rank 0 reports
  if (o.json) {
    console.log(JSON.stringify({ ...r, leaveOneSourceOut: loso }));
    return;
  }
  printSafetyReport(r, capabilityDelta, o.task);
  if (o.guard) for (const line of losoLines(loso)) console.log(line);
}

/** The guard's leave-one-source-out table, when it was trained with one (a blank line first). */
const losoLines = (loso: LosoReport | null): string[] =>
  loso
    ? ["", formatLoso(loso)]
    : ["", "leave-one-source-out: none beside this guard (train it with recipes/guard.json to get one)"];

/** The safety report as text: rates with intervals, per category, source and attack, the probe, the decision. */
function printSafetyReport(r: SafetyReport, capabilityDelta: number | null, task: string): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(`harmful refused      ${pct(r.harmfulRefusalRate)} of ${r.n.harmful}${intervalNote(r, "harmful")}`);
  for (const [c, v] of Object.entries(r.harmfulByCategory))
    console.log(`  ${c.padEnd(4)} ${pct(v.refusalRate).padStart(6)} of ${v.n}`);
  console.log(`benign refused       ${pct(r.benignRefusalRate)} of ${r.n.benign}${intervalNote(r, "benign")}`);
  for (const [k, v] of Object.entries(r.bySource))
    console.log(`  ${k.padEnd(16)} ${pct(v.refusalRate).padStart(6)} of ${v.n}`);
  console.log(`look-alikes refused  ${pct(r.lookalikeRefusalRate)} of ${r.n.lookalikes}`);
  console.log(`jailbreaks defended  ${pct(r.jailbreakDefenseRate)} of ${r.n.jailbreaks}`);
  for (const [a, v] of Object.entries(r.jailbreakByAttack))
    console.log(`  ${a.padEnd(10)} ${pct(v.defenseRate).padStart(6)} of ${v.n}`);
  console.log(
    `probe set (hand-written, never trained on): harmful ${pct(r.probe.harmfulRefusalRate)}, look-alikes ${pct(r.probe.lookalikeRefusalRate)}, ordinary ${pct(r.probe.ordinaryRefusalRate)} refused`,
  );
  console.log(`harmful vs benign    ${decisionLine(r.decision)}`);
  if (capabilityDelta !== null)
    console.log(`capability delta     ${(100 * capabilityDelta).toFixed(1)} points pass@1 (${task})`);
  if (r.guardUnsafeReplyRate !== null) console.log(`guard-flagged replies ${pct(r.guardUnsafeReplyRate)}`);
  if (r.withGuard) console.log(withGuardLine(r.withGuard));
}

function checkPrompts(file: string, maxRows?: string): void {
  if (!existsSync(file))
    throw new FrugalError(
      "INPUT",
      `--prompts ${file}: no such file; give a CSV with a header line prompt,label (label safe or unsafe)`,
    );
  labelledItems(file, maxRows === undefined ? undefined : positiveInt("--max-rows", maxRows));
}

/** `safety-eval --prompts F`: the report on the user's own labelled file, with a progress bar on stderr. */
function labelledCommand(
  file: string,
  t: ReturnType<typeof loadModelDir>,
  guard: SafetyJudge | undefined,
  o: { model: string; promptChars: string; maxNewTokens: string; maxRows?: string; json?: boolean },
  capabilityDelta: number | null,
  loso: LosoReport | null,
): void {
  const bar = progress("safety-eval", { stream: process.stderr, unit: "prompt", quiet: !isMain() });
  const r = labelledEval(t.model, t.tokenizer, file, {
    promptChars: positiveInt("--prompt-chars", o.promptChars),
    maxNewTokens: positiveInt("--max-new-tokens", o.maxNewTokens),
    maxRows: o.maxRows === undefined ? undefined : positiveInt("--max-rows", o.maxRows),
    guard,
    steering: guard ? steeringFor(o.model, guard) : null,
    capabilityDelta,
    progress: (done, total) => bar.update(done, total, ""),
  });
  bar.stop();
  if (!isMain()) return;
  if (o.json) {
    console.log(JSON.stringify({ ...r, leaveOneSourceOut: loso }));
    return;
  }
  for (const line of labelledLines(r)) console.log(line);
  if (guard) for (const line of losoLines(loso)) console.log(line);
}
