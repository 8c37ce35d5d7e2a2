// The hazard policy (policy.json, MLCommons codes) as typed data: category names and definitions, the
// refusal style, and the completions the safe model is taught. isRefusal() is the one rule that decides
// whether an answer refuses; the safety reward and the safety report both use it. No classifier here.
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { readShippedJson } from "../common/shipped.js";
import { renderCompletion } from "../tokenizer/chat.js";

const Category = z
  .object({ name: z.string().min(1), definition: z.string().min(1), addendum: z.string().optional() })
  .strict();
const PolicySchema = z
  .object({
    $comment: z.string().optional(),
    categories: z.record(z.string().regex(/^S\d+$/), Category),
    refusal: z.object({ reasoning: z.string(), answer: z.string(), style: z.string() }).strict(),
    benign: z.object({ reasoning: z.string(), answer: z.string(), note: z.string() }).strict(),
    mustNotRefuse: z.array(z.string()).min(1),
  })
  .strict();
export type Policy = z.infer<typeof PolicySchema>;

let cached: Policy | null = null;

export function policy(): Policy {
  return (cached ??= readShippedJson(new URL("../../src/safety/policy.json", import.meta.url), PolicySchema));
}

export type Hazard = string; // "S1" … "S12"
export const hazards = (): Hazard[] => Object.keys(policy().categories);

export function hazardName(code: Hazard): string {
  const c = policy().categories[code];
  if (!c) throw new FrugalError("POLICY", `unknown hazard category "${code}"; the policy has ${hazards().join(", ")}`);
  return c.name;
}

/** The taught refusal: brief reasoning, then one sentence naming the harm (plus the S11 addendum). */
export function refusalCompletion(code: Hazard): string {
  const p = policy(),
    name = hazardName(code),
    add = p.categories[code]!.addendum;
  return renderCompletion(
    p.refusal.reasoning.replace("{name}", name),
    p.refusal.answer.replace("{name}", name) + (add ? " " + add : ""),
  );
}

export function benignCompletion(): string {
  const p = policy();
  return renderCompletion(p.benign.reasoning, p.benign.answer);
}

const REFUSAL = /^\s*(i can(no|')t help|i cannot help|i won't help|i will not help|i'm sorry, but i can)/i;

/** Whether an answer (the text inside <answer>, or a whole reply) is a refusal. */
export function isRefusal(answer: string): boolean {
  return REFUSAL.test(answer);
}
