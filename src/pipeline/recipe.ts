// A recipe is a validated JSON pipeline: a list of stages (each kind's schema lives in stages/<kind>.ts) with
// their settings, an evaluation, and the device to bill. Unknown keys are errors that name their path; every
// default is written out in the saved recipe.json of a run.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { repoRoot } from "../common/files.js";
import { getTask } from "../tasks/index.js";
import { readProblemFile } from "../tasks/problem-file.js";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { kindOf, StageSchema } from "./stages/index.js";
import { stageInput, stageName } from "./stages/shared.js";
import { checkHfInput, isHfInput } from "./hf-input.js";

export { StageSchema, type StageConfig } from "./stages/index.js";

const name = stageName;

export const EvalSchema = z
  .object({
    task: z.string(),
    /** a JSONL problem file (relative to the repository root) to evaluate on instead of the test split */
    problems: z.string().optional(),
    /** problems drawn from the test split, or the first ones of the problem file */
    nProblems: z.number().int().positive().default(100),
    k: z.number().int().positive().default(4),
    temperature: z.number().min(0).default(0.6),
    topP: z.number().gt(0).max(1).default(0.95),
    maxNewTokens: z.number().int().positive().default(128),
    difficulties: z.array(z.number().int()).optional(),
    /** also decode each problem greedily (one more completion per problem) */
    greedy: z.boolean().default(true),
    /** sample with the task's calculator: it writes each step's result and admits legal moves only (search tasks) */
    calculator: z.boolean().default(false),
    /** keep the KV cache in bfloat16 (a GRPO stage's kvCacheBf16): faster on long completions, samples differ */
    kvCacheBf16: z.boolean().default(false),
    /** stages to evaluate (default: all) */
    stages: z.array(name).optional(),
  })
  .strict();

/** The safety report of the run: safe model vs the plain model it came from, judged with the guard. */
export const SafetyEvalSchema = z
  .object({
    model: name,
    baseline: name,
    /** a guard stage, or hf:DIR for a brought generative guard */
    guard: stageInput,
    /** benign test prompts to measure over-refusal on */
    maxBenign: z.number().int().positive().default(300),
    /** cap on every other held-out set (tests use a small one; reports use all) */
    maxPerSet: z.number().int().positive().optional(),
    promptChars: z.number().int().positive().default(160),
    /** room for reasoning + refusal; promptChars + 2 + maxNewTokens must fit the model's context */
    maxNewTokens: z.number().int().positive().default(176),
  })
  .strict();

export const RecipeSchema = z
  .object({
    name: z.string(),
    description: z.string().default(""),
    seed: z.number().int().nonnegative().default(1),
    device: z
      .object({ kind: z.string().default("cpu-vcpu"), count: z.number().int().positive().default(2) })
      .strict()
      .default({ kind: "cpu-vcpu", count: 2 }),
    checkpointEvery: z.number().int().positive().default(25),
    stages: z.array(StageSchema).min(1),
    eval: EvalSchema.optional(),
    safetyEval: SafetyEvalSchema.optional(),
  })
  .strict();
export type Recipe = z.infer<typeof RecipeSchema>;

export function parseRecipe(raw: unknown, source: string): Recipe {
  const p = RecipeSchema.safeParse(raw);
  if (!p.success) {
    const issues = p.error.issues
      .slice(0, 5)
      .map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`)
      .join("\n");
    throw new FrugalError("RECIPE", `${source} is not a valid recipe:\n${issues}`);
  }
  const r = p.data,
    seen = new Set<string>();
  for (const s of r.stages) {
    if (seen.has(s.name)) throw new FrugalError("RECIPE", `${source}: two stages are named "${s.name}"`);
    for (const input of kindOf(s).inputs(s)) {
      if (seen.has(input)) continue;
      if (isHfInput(input)) {
        checkHfInput(input, `${source}: stage "${s.name}"`);
        continue;
      }
      const earlier = [...seen].join(", ") || "none";
      throw new FrugalError(
        "RECIPE",
        `${source}: stage "${s.name}" reads from "${input}", which is not an earlier stage (earlier: ${earlier})`,
      );
    }
    seen.add(s.name);
  }
  for (const s of r.eval?.stages ?? [])
    if (!seen.has(s)) throw new FrugalError("RECIPE", `${source}: eval.stages names "${s}", which is not a stage`);
  // a bad problem file fails here, before any stage runs
  if (r.eval?.problems) readProblemFile(resolve(repoRoot, r.eval.problems), getTask(r.eval.task));
  return r;
}

export function readRecipe(file: string): Recipe {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new FrugalError(
      "RECIPE",
      `cannot read recipe ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FrugalError("RECIPE", `${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseRecipe(raw, file);
}
