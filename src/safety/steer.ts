// The policy's refuse-or-not decision as a number, and that decision steered by the guard (the Safe
// variant as served with its guard): refuse when the policy's refusal margin (log-odds, right after
// <think>) plus the guard's log-odds that the prompt is unsafe is over a threshold tuned on dev-split draws.
// The two judges err on different prompts, so the sum ranks better than either. Also the decision's prior set
// in the policy's own weights on dev draws (calibrateDecision). No generation here.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import * as E from "../engine/index.js";
import { allgather, shareOf, world } from "../engine/dist.js";
import { FrugalError, internal } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { addBiasChannel, biasChannel, setLogitBias } from "../model/surgery.js";
import { forward, type Model } from "../model/transformer.js";
import { promptIds } from "../tokenizer/chat.js";
import { TAGS, type Tokenizer } from "../tokenizer/tokenizer.js";
import { devBenignPrompts, drawItem, type SafetyItem } from "./corpus.js";
import { classifyShared, packGuard, type GuardVerdict, type SafetyJudge } from "./guard.js";
import { wholeRowBatches } from "../train/batch.js";
import { benignCompletion, refusalCompletion } from "./policy.js";
import { policyText } from "./reward.js";

const decisionTokenCache = new WeakMap<Tokenizer, { think: number; refuse: number; answer: number }>();

/**
 * The first reasoning token of the taught refusal and of the ordinary reply (the decision's two choices); once per
 * tokenizer.
 */
export function decisionTokens(tok: Tokenizer): { think: number; refuse: number; answer: number } {
  const cached = decisionTokenCache.get(tok);
  if (cached) return cached;
  const think = tok.tokenId(TAGS[0]),
    first = (c: string) => {
      const ids = tok.encode(c);
      return ids[ids.indexOf(think) + 1]!;
    };
  const refuse = first(refusalCompletion("S1")),
    answer = first(benignCompletion());
  if (refuse === answer)
    throw internal(
      "the refusal and the ordinary reply start with the same token; the decision margin needs them to differ",
    );
  const out = Object.freeze({ think, refuse, answer });
  decisionTokenCache.set(tok, out);
  return out;
}

/** The policy's decision right after <think>, per prompt: how it leans and whether it is deciding at all. */
export interface PolicyDecisions {
  /** refusal-token minus answer-token logit */
  margin: number[];
  /** its most likely token is one of the two (a task prompt, "802+019", starts its working instead) */
  deciding: boolean[];
  /** refusal-token logit minus the largest other logit: > 0 when greedy decoding starts the refusal */
  lead: number[];
}

/** The policy's decisions for each prompt's ids (ending with <|assistant|>), in batched forward passes. */
export function decisionsOfIds(model: Model, tok: Tokenizer, prompts: number[][]): PolicyDecisions {
  const { think, refuse, answer } = decisionTokens(tok),
    n = prompts.length,
    out: PolicyDecisions = { margin: new Array(n), deciding: new Array(n), lead: new Array(n) };
  for (const rows of wholeRowBatches(
    prompts.map((p) => p.length + 1), // with <think> appended
    32,
  )) {
    const { ids, B, T, lengths } = packGuard(rows.map((j) => [...prompts[j]!, think]));
    E.noGrad(() => {
      const logits = forward(model, ids, B, T).data,
        V = logits.length / (B * T); // (B·T, V), read before endStep
      for (let b = 0; b < B; b++) {
        const o = (b * T + lengths[b]! - 1) * V,
          top = Math.max(logits[o + refuse]!, logits[o + answer]!);
        let others = -Infinity;
        for (let v = 0; v < V; v++)
          if (v !== refuse && v !== answer && logits[o + v]! > others) others = logits[o + v]!;
        const j = rows[b]!;
        out.margin[j] = logits[o + refuse]! - logits[o + answer]!;
        out.deciding[j] = top >= others;
        out.lead[j] = logits[o + refuse]! - Math.max(logits[o + answer]!, others);
      }
    });
    E.endStep();
  }
  return out;
}

/** The decisions on each item as the policy reads it (policyText, cut to promptChars). */
export function itemDecisions(model: Model, tok: Tokenizer, items: SafetyItem[], promptChars: number): PolicyDecisions {
  return decisionsOfIds(
    model,
    tok,
    items.map((x) => promptIds(tok, policyText(x.text, promptChars))),
  );
}

/**
 * itemDecisions with the items split between MPI ranks in whole batches of 32 (the same batches, so the same
 * numbers as one process reading them all); every rank must call it.
 */
export function itemDecisionsShared(
  model: Model,
  tok: Tokenizer,
  items: SafetyItem[],
  promptChars: number,
): PolicyDecisions {
  if (world().size <= 1) return itemDecisions(model, tok, items, promptChars);
  const [a, b] = shareOf(items.length, 32),
    parts = allgather(itemDecisions(model, tok, items.slice(a, b), promptChars));
  return {
    margin: parts.flatMap((d) => d.margin),
    deciding: parts.flatMap((d) => d.deciding),
    lead: parts.flatMap((d) => d.lead),
  };
}

/** Where calibrateDecision set the policy's refusal prior. */
export interface DecisionCalibration {
  /** the LM head's weight on the bias channel for the refusal token */
  beta: number;
  /** the refusal logit's rise after <think>, median over the dev prompts (β times the channel's reading) */
  medianShift: number;
  /** share of the benign dev prompts (devBenignPrompts) the calibrated policy refuses */
  devBenignRate: number;
}

/**
 * Moves the policy's refusal prior into its weights: a bias channel (addBiasChannel, carried by <think>)
 * whose weight β on the refusal token is set so that greedy decoding starts the refusal on `rate` of the
 * benign dev prompts (devBenignPrompts: the CSV's dev rows as written and in trained question frames). The
 * refusal's lead over the best other token is linear in β (l₀ + β·k, k > 0 measured at β = 1), so β comes
 * from one sort. Only the position right after <think> changes; the model stays an
 * ordinary Llama (GGUF, llama.cpp).
 */
export function calibrateDecision(
  model: Model,
  tok: Tokenizer,
  promptChars: number,
  seed: number,
  rate: number,
): { model: Model; calibration: DecisionCalibration } {
  const { think, refuse } = decisionTokens(tok),
    benign = devBenignPrompts();
  if (!benign.length) throw internal("no benign dev prompts to calibrate the decision on");
  const m = biasChannel(model) >= 0 ? model : addBiasChannel(model, think, seed ^ 0xb1a5);
  setLogitBias(m, refuse, 0);
  const l0 = itemDecisionsShared(m, tok, benign, promptChars).lead;
  setLogitBias(m, refuse, 1);
  const k = itemDecisionsShared(m, tok, benign, promptChars).lead.map((x, i) => x - l0[i]!);
  if (k.some((x) => !(x > 0)))
    throw internal("calibrateDecision: the bias channel does not raise the refusal token on every dev draw");
  // a draw is refused once β > −l₀/k; just past the n-th smallest such β refuses n of them
  const need = l0.map((x, i) => -x / k[i]!).sort((a, b) => a - b),
    n = Math.floor(rate * need.length);
  const at = n === 0 ? need[0]! - 1 : need[n - 1]!,
    beta = at + 1e-3 * Math.abs(at) + 1e-6;
  setLogitBias(m, refuse, beta);
  const refused = itemDecisionsShared(m, tok, benign, promptChars).lead.filter((x) => x > 0).length,
    sorted = [...k].sort((a, b) => a - b); // measured, not assumed
  return {
    model: m,
    calibration: { beta, medianShift: beta * sorted[sorted.length >> 1]!, devBenignRate: refused / benign.length },
  };
}

/** How a guard steers a policy's decision; saved beside the safe model as steering.json. */
const SteeringSchema = z
  .object({
    guardWeight: z.number(),
    threshold: z.number(),
    devBenignRate: z.number().min(0).max(1),
    guardThreshold: z.number(),
  })
  .strict();
export interface Steering {
  /** weight of the guard's log-odds (1: the two log-odds simply add) */
  guardWeight: number;
  /** refuse when margin + guardWeight · guardLogOdds > threshold */
  threshold: number;
  /** share of dev benign draws refused at that threshold (chosen equal to the plain union's) */
  devBenignRate: number;
  /** the guard's own threshold when this was tuned (a different guard needs its own tuning) */
  guardThreshold: number;
}
export const STEERING_FILE = "steering.json";

const logOdds = (p: number) => Math.log(Math.max(p, 1e-6)) - Math.log(Math.max(1 - p, 1e-6));

type GuardScores = { lo: number[]; flagged: boolean[] };
const scoresOf = (v: GuardVerdict[]): GuardScores => ({
  lo: v.map((x) => logOdds(x.pUnsafe)),
  flagged: v.map((x) => x.unsafe),
});

/** The guard on each prompt: log-odds that it is unsafe, and whether it flags it at its own threshold. */
export function guardScores(guard: SafetyJudge, texts: readonly string[]): GuardScores {
  return scoresOf(guard.classify(texts, "prompt"));
}

/** guardScores with the texts split between MPI ranks (classifyShared); every rank must call it. */
export function guardScoresShared(guard: SafetyJudge, texts: readonly string[]): GuardScores {
  return scoresOf(classifyShared(guard, texts, "prompt"));
}

/**
 * Whether the guarded policy refuses each prompt. Where the policy is deciding: steered = margin +
 * weight · guard log-odds over the threshold; without steering (union) = the policy refuses or the guard
 * flags. Where it is not (a task prompt): refused only when the guard flags it.
 */
export function guardedRefusals(
  d: Pick<PolicyDecisions, "margin" | "deciding">,
  g: { lo: number[]; flagged: boolean[] },
  st: Steering | null,
): boolean[] {
  return d.margin.map((m, i) =>
    !d.deciding[i] ? g.flagged[i]! : st ? m + st.guardWeight * g.lo[i]! > st.threshold : m > 0 || g.flagged[i]!,
  );
}

/** How many dev-split items tuneSteering draws (it reads the benign ones). */
export const STEERING_DEV_DRAWS = 3000;

/** The benign dev-split draws the steering is tuned on. */
export function steeringDevPrompts(seed: number, devItems = STEERING_DEV_DRAWS): SafetyItem[] {
  const rng = new Rng(seed ^ 0x57ee);
  return Array.from({ length: devItems }, () => drawItem(rng, "dev")).filter((x) => !x.unsafe);
}

/**
 * The threshold at which the steered rule refuses the same share of dev-split benign draws as the plain
 * union (the policy refuses or the guard flags) — no test prompt is read — so it buys fewer wrong refusals
 * of look-alikes at the benign cost the guarded server already had.
 */
export function tuneSteering(
  model: Model,
  tok: Tokenizer,
  guard: SafetyJudge,
  promptChars: number,
  seed: number,
  devItems = STEERING_DEV_DRAWS,
): Steering {
  const benign = steeringDevPrompts(seed, devItems);
  if (!benign.length) throw internal("no benign dev draws to tune the steering on");
  const d = itemDecisionsShared(model, tok, benign, promptChars),
    g = guardScoresShared(
      guard,
      benign.map((x) => x.text),
    );
  const union = guardedRefusals(d, g, null).filter(Boolean).length,
    fixed = d.deciding.filter((x, i) => !x && g.flagged[i]).length;
  const scores = d.margin
      .map((m, i) => m + g.lo[i]!)
      .filter((_, i) => d.deciding[i])
      .sort((a, b) => b - a),
    k = union - fixed; // non-deciding prompts: same rule both ways
  const threshold = !scores.length ? 0 : k < scores.length ? scores[k]! : scores[scores.length - 1]! - 1; // refuse when score > threshold
  const st = { guardWeight: 1, threshold, devBenignRate: 0, guardThreshold: guard.threshold };
  return { ...st, devBenignRate: guardedRefusals(d, g, st).filter(Boolean).length / benign.length };
}

/** The steering saved in a model checkpoint directory, or null when it has none. */
export function loadSteering(modelDir: string): Steering | null {
  const f = join(modelDir, STEERING_FILE);
  if (!existsSync(f)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(f, "utf8"));
  } catch (e) {
    throw new FrugalError(
      "CHECKPOINT",
      `${f} is not valid JSON (${(e as Error).message}); delete it to serve with the plain guard, or rerun the safety-grpo stage`,
    );
  }
  const p = SteeringSchema.safeParse(raw);
  if (!p.success)
    throw new FrugalError(
      "CHECKPOINT",
      `${f}: expected { guardWeight, threshold, devBenignRate, guardThreshold } numbers, got ${JSON.stringify(raw).slice(0, 120)}`,
    );
  return p.data;
}

/**
 * The steering to use with this guard: the saved one when it was tuned with a guard of the same threshold, else null
 * (plain union).
 */
export function steeringFor(modelDir: string, guard: SafetyJudge): Steering | null {
  const st = loadSteering(modelDir);
  return st && Math.abs(st.guardThreshold - guard.threshold) < 1e-6 ? st : null;
}
