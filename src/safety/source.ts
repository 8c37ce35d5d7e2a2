// What the safety stages train on: (a) SFT examples — reasoning-then-refusal for harmful prompts, the
// policy's ordinary reply for benign ones — and (b) a GRPO prompt source that mixes safety prompts (guard
// reward) with a reasoning task (its rule reward) so capability is trained in the same steps.
// The task side is passed in by the caller; no stage wiring here.
import type { Rng } from "../common/rng.js";
import type { PromptSource } from "../rl/grpo.js";
import { promptIds, sftExample, type SftExample } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { RewardResult } from "../tasks/rewards.js";
import { drawItem, type SafetyItem } from "./corpus.js";
import { rowsOf } from "./rows.js";
import type { SafetyJudge } from "./guard.js";
import { benignCompletion, hazards, refusalCompletion } from "./policy.js";
import { policyText, safetyReward } from "./reward.js";

/**
 * English a policy's tokenizer is fitted on: the training split only (CSV rows and n drawn items, as the
 * policy reads them) and the taught completions; no held-out family or probe text.
 */
export function policyCorpus(rng: Rng, n: number): string[] {
  const texts = rowsOf("train").map((r) => policyText(r.prompt, 1_000));
  for (let i = 0; i < n; i++) texts.push(policyText(drawItem(rng, "train").text, 1_000));
  return [...texts, benignCompletion(), ...hazards().map(refusalCompletion)];
}

/** The completion the policy is taught for a safety item. */
export function targetCompletion(item: SafetyItem): string {
  return item.unsafe ? refusalCompletion(item.hazard ?? "S2") : benignCompletion();
}

export interface SafetyExampleOptions {
  promptChars: number;
  /** loss weight of the refuse-or-not token */
  decisionWeight: number;
  /** next-token loss weight on the prompt's own text (0 = the completion only) */
  promptWeight: number;
}

/**
 * A safety SFT example. The decision — refuse or not — is the first token after <think> ("This asks…" vs
 * "An ordinary…"); its loss weight is `decisionWeight` so that one token is not drowned by the ~90 others.
 * With `promptWeight` > 0 the prompt's own text is also predicted, so the policy learns to read English.
 */
export function safetyExample(tok: Tokenizer, rng: Rng, o: SafetyExampleOptions): SftExample {
  const item = drawItem(rng, "train"),
    prompt = policyText(item.text, o.promptChars);
  const ex = sftExample(tok, prompt, targetCompletion(item)),
    promptLen = promptIds(tok, prompt).length;
  for (let t = 1; t < promptLen - 1; t++) ex.mask[t] = o.promptWeight;
  ex.mask[promptLen + 1] = o.decisionWeight;
  return ex;
}

export type Mixed<P> = { kind: "task"; p: P } | { kind: "safety"; item: SafetyItem; text: string };

/** Safety items with probability safetyFrac, else the task's own source. */
export function mixedSource<P>(
  task: PromptSource<P>,
  guard: SafetyJudge,
  safetyFrac: number,
  promptChars: number,
): PromptSource<Mixed<P>> {
  const reward = safetyReward(guard);
  return {
    draw: (rng, n) =>
      Array.from({ length: n }, (): Mixed<P> => {
        if (rng.next() >= safetyFrac) return { kind: "task", p: task.draw(rng, 1)[0]! };
        const item = drawItem(rng, "train");
        return { kind: "safety", item, text: policyText(item.text, promptChars) };
      }),
    prompt: (m) => (m.kind === "task" ? task.prompt(m.p) : m.text),
    calculator: task.calculator && ((m) => (m.kind === "task" ? task.calculator!(m.p) : undefined)),
    reward: (completion, m): RewardResult => {
      const r = m.kind === "task" ? task.reward(completion, m.p) : reward(completion, m.item);
      return { reward: r.reward, metrics: { ...r.metrics, safetyItem: m.kind === "safety" ? 1 : 0 } };
    },
  };
}
