// The safety report: greedy replies of a policy to every held-out set (harmful requests and questions,
// ordinary benign prompts, benign look-alikes, jailbreak attacks), refusal decided by policy.isRefusal,
// each reply also judged by the guard when one is given; capability = pass@1 against a baseline model.
// Rates only; no training here.
import { FrugalError } from "../common/errors.js";
import { generate } from "../model/sampler.js";
import type { Model } from "../model/transformer.js";
import { promptIds } from "../tokenizer/chat.js";
import { SPECIAL, type Tokenizer } from "../tokenizer/tokenizer.js";
import { parseCompletion } from "../tasks/rewards.js";
import { heldOutSets, type SafetyItem } from "./data.js";
import { probeSets } from "./probe.js";
import type { Guard } from "./guard.js";
import { isRefusal } from "./policy.js";
import { policyText } from "./reward.js";

export interface SafetyReport {
  /** refused / all, over held-out harmful requests and harmful questions */
  harmfulRefusalRate: number;
  /** refused / all, over ordinary held-out benign prompts (as written and as questions) */
  benignRefusalRate: number;
  /** refused / all, over benign prompts that sound harmful ("kill a Python process") */
  lookalikeRefusalRate: number;
  /** refused / all, over templated attacks wrapping held-out harmful requests */
  jailbreakDefenseRate: number;
  /** refused / all on the hand-written probe set (probe.json, never trained on): harmful, look-alike, ordinary */
  probe: { harmfulRefusalRate: number; lookalikeRefusalRate: number; ordinaryRefusalRate: number };
  /** pass@1 of this model minus the baseline's on the reasoning task (null without a baseline) */
  capabilityDelta: number | null;
  /** share of all replies the guard flags as unsafe (null without a guard) */
  guardUnsafeReplyRate: number | null;
  harmfulByCategory: Record<string, { n: number; refusalRate: number }>;
  jailbreakByAttack: Record<string, { n: number; defenseRate: number }>;
  n: Record<string, number>;
  examples: { kind: string; prompt: string; reply: string; refused: boolean }[];
  wallMs: number;
}

interface Reply { item: SafetyItem; text: string; refused: boolean }

function replies(model: Model, tok: Tokenizer, items: SafetyItem[], promptChars: number, maxNewTokens: number): Reply[] {
  const prompts = items.map((x) => promptIds(tok, policyText(x.text, promptChars)));
  const room = model.config.max_position_embeddings - Math.max(...prompts.map((p) => p.length));
  if (room < maxNewTokens) throw new FrugalError("CONFIG", `safety eval: prompts of up to ${promptChars} characters leave ${room} tokens of the ${model.config.max_position_embeddings}-token context, fewer than the ${maxNewTokens} a reasoning + refusal needs; lower promptChars`);
  const out = generate(model, prompts, prompts.map((_, i) => i), {
    maxNewTokens, temperature: 0, batch: 32, stopTokens: [tok.tokenId(SPECIAL.end)], decode: (ids) => tok.decode(ids),
  });
  return out.map((s, i) => {
    const p = parseCompletion(s.text);
    return { item: items[i]!, text: s.text, refused: p.answer !== null && isRefusal(p.answer) };
  });
}

const rate = (rs: Reply[]) => (rs.length ? rs.filter((r) => r.refused).length / rs.length : 0);

function groupBy(rs: Reply[], key: (r: Reply) => string): Record<string, Reply[]> {
  const g: Record<string, Reply[]> = {};
  for (const r of rs) (g[key(r)] ??= []).push(r);
  return g;
}

export interface SafetyEvalOptions { promptChars: number; maxBenign: number; maxPerSet?: number; maxNewTokens: number; guard?: Guard; capabilityDelta?: number | null }

export function safetyEval(model: Model, tok: Tokenizer, o: SafetyEvalOptions): SafetyReport {
  const t0 = performance.now(), sets = heldOutSets(o.maxBenign);
  const run = (xs: SafetyItem[]) => replies(model, tok, xs.slice(0, o.maxPerSet ?? xs.length), o.promptChars, o.maxNewTokens);
  const harmful = run([...sets.harmful, ...sets.harmfulQuestions]), benign = run([...sets.benign, ...sets.benignQuestions]);
  const look = run(sets.lookalikes), jail = run(sets.jailbreaks), all = [...harmful, ...benign, ...look, ...jail];
  const ps = probeSets(), probe = { harmfulRefusalRate: rate(run(ps.probeHarmful)), lookalikeRefusalRate: rate(run(ps.probeLookalikes)), ordinaryRefusalRate: rate(run(ps.probeOrdinary)) };
  const guardUnsafeReplyRate = o.guard ? o.guard.classify(all.map((r) => r.text), "completion").filter((v) => v.unsafe).length / all.length : null;
  const cats = groupBy(harmful, (r) => r.item.hazard ?? "?"), attacks = groupBy(jail, (r) => r.item.kind.replace(/^jailbreak-/, ""));
  return {
    harmfulRefusalRate: rate(harmful), benignRefusalRate: rate(benign), lookalikeRefusalRate: rate(look), jailbreakDefenseRate: rate(jail),
    probe, capabilityDelta: o.capabilityDelta ?? null, guardUnsafeReplyRate,
    harmfulByCategory: Object.fromEntries(Object.entries(cats).map(([k, v]) => [k, { n: v.length, refusalRate: rate(v) }])),
    jailbreakByAttack: Object.fromEntries(Object.entries(attacks).map(([k, v]) => [k, { n: v.length, defenseRate: rate(v) }])),
    n: { harmful: harmful.length, benign: benign.length, lookalikes: look.length, jailbreaks: jail.length },
    examples: [harmful[0], harmful[harmful.length - 1], benign[0], look[0], jail[0], jail[1]].filter((r): r is Reply => !!r)
      .map((r) => ({ kind: r.item.kind, prompt: r.item.text, reply: r.text, refused: r.refused })),
    wallMs: performance.now() - t0,
  };
}
