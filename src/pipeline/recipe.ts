// A recipe is a validated JSON pipeline: a list of stages (pretrain, sft, grpo, rejection-sft, distill,
// safety-sft, safety-grpo) with their settings, an evaluation, and the device to bill. Unknown keys are
// errors that name their path; every default is written out in the saved recipe.json of a run.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { GrpoConfig } from "../rl/grpo.js";
import { GuardConfig } from "../safety/guard-train.js";
import { SupervisedConfig } from "../train/supervised.js";

const ModelShape = z.object({
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  max_position_embeddings: z.number().int().positive().default(256),
  rope_theta: z.number().positive().default(10000),
  tie_word_embeddings: z.boolean().default(false),
}).strict();

const name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "stage names are lower-case letters, digits and dashes");
const tasks = z.array(z.string()).min(1);
const difficulties = z.record(z.string(), z.array(z.number().int())).default({});

/**
 * The policy's tokenizer, made by pretrain. "char": one token per character of the tasks' alphabet.
 * { type: "bpe" }: byte-level BPE fitted on the tasks' traces and the safety training split's English, digits
 * kept single (arithmetic reads as with "char"), so a later safety stage reads words rather than letters.
 */
const PolicyTokenizer = z.union([
  z.literal("char"),
  z.object({ type: z.literal("bpe"), vocabSize: z.number().int().min(300).default(1024) }).strict(),
], { error: 'expected "char" or { "type": "bpe", "vocabSize": 300 or more (default 1024) }' }).default("char");
const Pretrain = SupervisedConfig.extend({
  type: z.literal("pretrain"), name, model: ModelShape, tasks, difficulties, tokenizer: PolicyTokenizer,
}).strict();
const Sft = SupervisedConfig.extend({
  type: z.literal("sft"), name, from: name, tasks, difficulties,
  /** size of the cold-start set (R1 used thousands of long, well-formatted traces) */
  examples: z.number().int().positive().default(200),
}).strict();
const Grpo = GrpoConfig.extend({ type: z.literal("grpo"), name, from: name, task: z.string(), difficulties: z.array(z.number().int()).optional() }).strict();
const Sampling = {
  prompts: z.number().int().positive().default(256),
  samplesPerPrompt: z.number().int().positive().default(4),
  sampleTemperature: z.number().min(0).default(1),
  maxNewTokens: z.number().int().positive().default(128),
};
const RejectionSft = SupervisedConfig.extend({
  type: z.literal("rejection-sft"), name, from: name, task: z.string(), difficulties: z.array(z.number().int()).optional(), ...Sampling,
}).strict();
const Distill = SupervisedConfig.extend({
  type: z.literal("distill"), name, teacher: name, student: ModelShape, task: z.string(), difficulties: z.array(z.number().int()).optional(), ...Sampling,
}).strict();

const Guard = GuardConfig.extend({ type: z.literal("guard"), name, model: ModelShape }).strict();

const SafetyMix = {
  from: name, task: z.string(), difficulties: z.array(z.number().int()).optional(),
  /** share of examples / prompts that are safety prompts (the rest are the task, to keep capability) */
  safetyFrac: z.number().min(0).max(1).default(0.5),
  /** safety prompts are cut to this many characters (the policy's context holds the prompt and its reply) */
  promptChars: z.number().int().positive().default(160),
};
const SafetySft = SupervisedConfig.extend({
  type: z.literal("safety-sft"), name, ...SafetyMix,
  /** loss weight of the refuse-or-not token (the first after <think>) relative to the others */
  decisionWeight: z.number().positive().default(16),
  /** loss weight of next-token prediction on the safety prompt's own text (0 = the completion only) */
  promptWeight: z.number().min(0).default(0),
  /**
   * grow the policy's BPE to this many tokens before safety training, with merges learned on the safety
   * training split's English (old ids keep their meaning; a new token's rows start as the mean of its
   * pieces'); unset = keep the pretrained tokenizer. The base reads only arithmetic, so its vocabulary is
   * mostly digits and tags; English needs its own words.
   */
  vocabSize: z.number().int().positive().optional(),
  /**
   * train this many policies (seeds seed + 1009·m, one shared tokenizer), each in member-m/, and merge them
   * side by side into one model this many times as wide whose logits are the members' mean (mergeModels):
   * an ensemble inside one ordinary Llama. 1 = a single policy, as wide as its source.
   */
  members: z.number().int().min(1).max(8).default(1),
  /** the task half is the source model's own verified completions on this many prompts (× 4 samples, T = 1) */
  tracePrompts: z.number().int().positive().default(512),
}).strict();
const SafetyGrpo = GrpoConfig.extend({
  type: z.literal("safety-grpo"), name, ...SafetyMix, guard: name,
  /**
   * after training, set the policy's refusal prior in its weights (a logit bias on the refusal token right
   * after <think>, addBiasChannel) so that it refuses this share of the benign dev prompts (the CSV's dev
   * rows as written and in trained question frames) — the policy's counterpart of the guard's
   * targetBenignFlagRate; unset = leave the decision where training put it
   */
  decisionBenignRate: z.number().gt(0).lt(0.5).optional(),
}).strict();

export const StageSchema = z.discriminatedUnion("type", [Pretrain, Sft, Grpo, RejectionSft, Distill, Guard, SafetySft, SafetyGrpo]);
export type StageConfig = z.infer<typeof StageSchema>;

export const EvalSchema = z.object({
  task: z.string(),
  nProblems: z.number().int().positive().default(100),
  k: z.number().int().positive().default(4),
  temperature: z.number().min(0).default(0.6),
  topP: z.number().gt(0).max(1).default(0.95),
  maxNewTokens: z.number().int().positive().default(128),
  difficulties: z.array(z.number().int()).optional(),
  /** stages to evaluate (default: all) */
  stages: z.array(name).optional(),
}).strict();

/** The safety report of the run: safe model vs the plain model it came from, judged with the guard. */
export const SafetyEvalSchema = z.object({
  model: name, baseline: name, guard: name,
  /** benign test prompts to measure over-refusal on */
  maxBenign: z.number().int().positive().default(300),
  /** cap on every other held-out set (tests use a small one; reports use all) */
  maxPerSet: z.number().int().positive().optional(),
  promptChars: z.number().int().positive().default(160),
  /** room for reasoning + refusal; promptChars + 2 + maxNewTokens must fit the model's context */
  maxNewTokens: z.number().int().positive().default(176),
}).strict();

export const RecipeSchema = z.object({
  name: z.string(),
  description: z.string().default(""),
  seed: z.number().int().nonnegative().default(1),
  device: z.object({ kind: z.string().default("cpu-vcpu"), count: z.number().int().positive().default(2) }).strict().default({ kind: "cpu-vcpu", count: 2 }),
  checkpointEvery: z.number().int().positive().default(25),
  stages: z.array(StageSchema).min(1),
  eval: EvalSchema.optional(),
  safetyEval: SafetyEvalSchema.optional(),
}).strict();
export type Recipe = z.infer<typeof RecipeSchema>;

export function parseRecipe(raw: unknown, source: string): Recipe {
  const p = RecipeSchema.safeParse(raw);
  if (!p.success) {
    const issues = p.error.issues.slice(0, 5).map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n");
    throw new FrugalError("RECIPE", `${source} is not a valid recipe:\n${issues}`);
  }
  const r = p.data, seen = new Set<string>();
  for (const s of r.stages) {
    if (seen.has(s.name)) throw new FrugalError("RECIPE", `${source}: two stages are named "${s.name}"`);
    const input = "from" in s ? s.from : "teacher" in s ? s.teacher : null;
    if (s.type === "safety-grpo" && !seen.has(s.guard)) throw new FrugalError("RECIPE", `${source}: stage "${s.name}" uses guard "${s.guard}", which is not an earlier stage`);
    if (input !== null && !seen.has(input)) throw new FrugalError("RECIPE", `${source}: stage "${s.name}" reads from "${input}", which is not an earlier stage (earlier: ${[...seen].join(", ") || "none"})`);
    seen.add(s.name);
  }
  for (const s of r.eval?.stages ?? []) if (!seen.has(s)) throw new FrugalError("RECIPE", `${source}: eval.stages names "${s}", which is not a stage`);
  return r;
}

export function readRecipe(file: string): Recipe {
  let text: string;
  try { text = readFileSync(file, "utf8"); } catch (e) { throw new FrugalError("RECIPE", `cannot read recipe ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`); }
  let raw: unknown;
  try { raw = JSON.parse(text); } catch (e) { throw new FrugalError("RECIPE", `${file} is not valid JSON: ${(e as Error).message}`); }
  return parseRecipe(raw, file);
}
