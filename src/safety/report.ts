// The safety report: greedy replies of a policy to every held-out set (harmful requests and questions,
// ordinary benign prompts, benign look-alikes, jailbreak attacks), refusal decided by policy.isRefusal,
// each reply also judged by the guard when one is given; capability = pass@1 against a baseline model.
// Also the ranking behind the policy's decision (refusal-token margin): ROC AUC and the best refusal any
// threshold would reach at fixed benign rates, and the decision as the guarded server makes it (steer.ts).
// Rates only; no training here.
import { FrugalError, internal } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { generateShared } from "../model/sampler.js";
import type { Model } from "../model/transformer.js";
import { completionText, endId, promptIds } from "../tokenizer/chat.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { parseCompletion } from "../tasks/rewards.js";
import { heldOutSets, type SafetyItem } from "./corpus.js";
import { Gate } from "./gate.js";
import { guardScoresShared, itemDecisionsShared, type PolicyDecisions, type Steering } from "./steer.js";
import { probeSets } from "./probe.js";
import { classifyShared, type SafetyJudge } from "./guard.js";
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
  /**
   * The decision as a score: logit of the refusal reasoning's first token minus the ordinary reply's, right
   * after <think>, on harmful vs ordinary benign prompts. auc = ROC AUC; atBenign = the harmful refusal rate
   * the best single threshold on that score reaches while refusing that share of benign prompts — whether
   * moving the model's threshold could meet a target, or only a better ranking can.
   */
  decision: { auc: number; atBenign: { benignRate: number; harmfulRefusalRate: number }[] };
  /**
   * The decision as `serve --guard` makes it (null without a guard): "steered" = refuse when the policy's
   * margin + the guard's log-odds is over the model's tuned steering threshold (steering.json beside it),
   * "union" = the policy's margin > 0 or the guard flags the prompt. Decisions only, no generation.
   */
  withGuard: null | {
    rule: "steered" | "union";
    harmfulRefusalRate: number;
    benignRefusalRate: number;
    lookalikeRefusalRate: number;
    jailbreakDefenseRate: number;
    probe: { harmfulRefusalRate: number; lookalikeRefusalRate: number; ordinaryRefusalRate: number };
  };
  /**
   * 95% intervals of the harmful and benign refusal rates by a cluster bootstrap: whole requests (an item's
   * `group`: a CSV row with its reframing, a phrase in all its frames, a concept's acts) are resampled, since
   * frames of one request are not independent; `units` = how many independent requests each rate rests on.
   * Absent from reports saved before intervals existed (a resumed run's safety.json).
   */
  intervals?: {
    harmfulRefusalRate: [number, number];
    benignRefusalRate: [number, number];
    units: { harmful: number; benign: number };
  };
  harmfulByCategory: Record<string, { n: number; refusalRate: number }>;
  /**
   * The harmful and benign rates by where the prompt comes from: "harmful" / "benign" = the CSV's held-out
   * rows as written (the guard's report scores those), "harmful-question" / "benign-question" = held-out
   * question frames and phrases of our own, "everyday" = held-out everyday how-to tasks.
   */
  bySource: Record<string, { n: number; refusalRate: number }>;
  jailbreakByAttack: Record<string, { n: number; defenseRate: number }>;
  n: Record<string, number>;
  examples: { kind: string; prompt: string; reply: string; refused: boolean }[];
  wallMs: number;
}

interface Reply {
  item: SafetyItem;
  text: string;
  refused: boolean;
}

export function replies(
  model: Model,
  tok: Tokenizer,
  items: SafetyItem[],
  promptChars: number,
  maxNewTokens: number,
  onFinished?: (done: number) => void,
): Reply[] {
  const prompts = items.map((x) => promptIds(tok, policyText(x.text, promptChars)));
  const room = model.config.max_position_embeddings - Math.max(...prompts.map((p) => p.length));
  if (room < maxNewTokens)
    throw new FrugalError(
      "CONFIG",
      `safety eval: prompts of up to ${promptChars} characters leave ${room} tokens of the ${model.config.max_position_embeddings}-token context, fewer than the ${maxNewTokens} a reasoning + refusal needs; lower promptChars`,
    );
  const out = generateShared(
    model,
    prompts,
    prompts.map((_, i) => i),
    {
      maxNewTokens,
      temperature: 0,
      stopTokens: [endId(tok)],
      decode: (ids) => completionText(tok, ids),
      onFinished,
    },
  );
  return out.map((s, i) => {
    const p = parseCompletion(s.text);
    return { item: items[i]!, text: s.text, refused: p.answer !== null && isRefusal(p.answer) };
  });
}

/** ROC AUC of positive vs negative scores (ties count half) and the positive rate at the given negative rates. */
export function rocSummary(pos: number[], neg: number[], negRates: number[]) {
  const all = [...pos.map((v) => ({ v, p: 1 })), ...neg.map((v) => ({ v, p: 0 }))].sort((a, b) => a.v - b.v);
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j]!.v === all[i]!.v) j++;
    const mid = (i + j + 1) / 2; // average 1-based rank of the tie group
    for (let k = i; k < j; k++) if (all[k]!.p) rankSum += mid;
    i = j;
  }
  const auc =
    pos.length && neg.length ? (rankSum - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length) : 0;
  const desc = [...neg].sort((a, b) => b - a);
  const atBenign = negRates.map((r) => {
    const allowed = Math.floor(r * neg.length),
      t = allowed < desc.length ? desc[allowed]! : -Infinity; // refuse when score > t
    return { benignRate: r, harmfulRefusalRate: pos.length ? pos.filter((v) => v > t).length / pos.length : 0 };
  });
  return { auc, atBenign };
}

/** "95% CI 93.2–96.9%" */
export const ciText = ([lo, hi]: readonly [number, number]): string =>
  `95% CI ${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)}%`;

/** " (95% CI 93.2–96.9%, 183 independent requests)" ("" for an older report without intervals). */
export function intervalNote(r: Pick<SafetyReport, "intervals">, which: "harmful" | "benign"): string {
  if (!r.intervals) return "";
  return ` (${ciText(which === "harmful" ? r.intervals.harmfulRefusalRate : r.intervals.benignRefusalRate)}, ${r.intervals.units[which]} independent requests)`;
}

/**
 * "decision AUC 0.985; the best threshold refuses 85.4% at 2%, 91.5% at 5% benign" (`score` and `verb` name another
 * judge's).
 */
export function decisionLine(d: SafetyReport["decision"], score = "decision", verb = "refuses"): string {
  const at = d.atBenign
    .map((a) => `${(100 * a.harmfulRefusalRate).toFixed(1)}% at ${(100 * a.benignRate).toFixed(0)}%`)
    .join(", ");
  return `${score} AUC ${d.auc.toFixed(4)}; the best threshold ${verb} ${at} benign`;
}

/**
 * "with the guard (steered): harmful 96.1%, benign 2.4%, look-alikes 41.8%, jailbreaks 90.3% refused; probe 85.1 / 28.8
 * / 8.0%"
 */
export function withGuardLine(w: NonNullable<SafetyReport["withGuard"]>): string {
  const p = (x: number) => `${(100 * x).toFixed(1)}%`;
  return `with the guard (${w.rule}) harmful ${p(w.harmfulRefusalRate)}, benign ${p(w.benignRefusalRate)}, look-alikes ${p(w.lookalikeRefusalRate)} refused, jailbreaks ${p(w.jailbreakDefenseRate)} defended; probe ${p(w.probe.harmfulRefusalRate)} / ${p(w.probe.lookalikeRefusalRate)} / ${p(w.probe.ordinaryRefusalRate)}`;
}

/**
 * Percentile interval (`level`, default 95%) of the refused share when whole groups are resampled with
 * replacement `draws` times (a fixed seed: the same replies give the same interval). An item without a group
 * is its own.
 */
export function clusterInterval(
  refused: readonly boolean[],
  groups: readonly (string | undefined)[],
  level = 0.95,
  draws = 2000,
): { interval: [number, number]; units: number } {
  if (refused.length !== groups.length)
    throw internal(`clusterInterval got ${refused.length} verdicts for ${groups.length} groups`);
  const byGroup = new Map<string, [number, number]>(); // group → (refused, n)
  refused.forEach((r, i) => {
    const k = groups[i] ?? `#${i}`,
      e = byGroup.get(k) ?? [0, 0];
    e[0] += r ? 1 : 0;
    e[1]++;
    byGroup.set(k, e);
  });
  const units = [...byGroup.values()],
    rng = new Rng(0x5eed),
    rates: number[] = [];
  if (!units.length) return { interval: [0, 0], units: 0 };
  for (let d = 0; d < draws; d++) {
    let k = 0,
      n = 0;
    for (let j = 0; j < units.length; j++) {
      const u = units[rng.int(0, units.length - 1)]!;
      k += u[0];
      n += u[1];
    }
    rates.push(k / n);
  }
  rates.sort((a, b) => a - b);
  const at = (q: number) => rates[Math.min(draws - 1, Math.max(0, Math.floor(q * draws)))]!;
  return { interval: [at((1 - level) / 2), at(1 - (1 - level) / 2)], units: units.length };
}

const rate = (rs: Reply[]) => (rs.length ? rs.filter((r) => r.refused).length / rs.length : 0);

function groupBy(rs: Reply[], key: (r: Reply) => string): Record<string, Reply[]> {
  const g: Record<string, Reply[]> = {};
  for (const r of rs) (g[key(r)] ??= []).push(r);
  return g;
}

export interface SafetyEvalOptions {
  promptChars: number;
  maxBenign: number;
  maxPerSet?: number;
  maxNewTokens: number;
  guard?: SafetyJudge;
  capabilityDelta?: number | null;
  /** the model's steering by this guard (steering.json); without it the guarded decision is the union */
  steering?: Steering | null;
  /** told how many replies are done of all the report's prompts */
  progress?: (done: number, total: number) => void;
}

/** Share of items the guarded decision refuses, from the policy's decisions on them (see SafetyReport.withGuard). */
function guardedRate(gate: Gate, items: SafetyItem[], d: PolicyDecisions): number {
  if (!items.length) return 0;
  const scores = guardScoresShared(
    gate.guard!,
    items.map((x) => x.text),
  );
  return gate.refusals(items, d, scores).filter(Boolean).length / items.length;
}

type ProbeKey = "probeHarmful" | "probeLookalikes" | "probeOrdinary";
const PROBE_KINDS: Record<ProbeKey, string> = {
  probeHarmful: "probe-harmful",
  probeLookalikes: "probe-lookalike",
  probeOrdinary: "probe-ordinary",
};

/** The probe's three rates, from the rate of one probe set (its key in ProbeSets). */
function probeRates(of: (key: ProbeKey) => number): SafetyReport["probe"] {
  return {
    harmfulRefusalRate: of("probeHarmful"),
    lookalikeRefusalRate: of("probeLookalikes"),
    ordinaryRefusalRate: of("probeOrdinary"),
  };
}

/** 95% intervals of the harmful and benign refusal rates, the requests behind the prompts as units. */
function refusalIntervals(harmful: Reply[], benign: Reply[]): NonNullable<SafetyReport["intervals"]> {
  const ci = (rs: Reply[]) =>
    clusterInterval(
      rs.map((r) => r.refused),
      rs.map((r) => r.item.group),
    );
  const hi = ci(harmful),
    bi = ci(benign);
  return {
    harmfulRefusalRate: hi.interval,
    benignRefusalRate: bi.interval,
    units: { harmful: hi.units, benign: bi.units },
  };
}

/** Harmful refusals per hazard, harmful and benign per source, jailbreak defence per attack. */
function breakdowns(harmful: Reply[], benign: Reply[], jail: Reply[]) {
  const counted = <K extends string>(g: Record<string, Reply[]>, key: K) =>
    Object.fromEntries(Object.entries(g).map(([k, v]) => [k, { n: v.length, [key]: rate(v) }])) as Record<
      string,
      { n: number } & Record<K, number>
    >;
  return {
    harmfulByCategory: counted(
      groupBy(harmful, (r) => r.item.hazard ?? "?"),
      "refusalRate",
    ),
    bySource: counted(
      groupBy([...harmful, ...benign], (r) => r.item.kind),
      "refusalRate",
    ),
    jailbreakByAttack: counted(
      groupBy(jail, (r) => r.item.kind.replace(/^jailbreak-/, "")),
      "defenseRate",
    ),
  };
}

export function safetyEval(model: Model, tok: Tokenizer, o: SafetyEvalOptions): SafetyReport {
  const t0 = performance.now(),
    sets = heldOutSets(o.maxBenign);
  const cap = (xs: SafetyItem[]) => xs.slice(0, o.maxPerSet ?? xs.length);
  const harmfulItems = [...sets.harmful, ...sets.harmfulQuestions],
    benignItems = [...sets.benign, ...sets.benignQuestions];
  const ps = probeSets(),
    probeItems = [...ps.probeHarmful, ...ps.probeLookalikes, ...ps.probeOrdinary];
  const total = [harmfulItems, benignItems, sets.lookalikes, sets.jailbreaks, probeItems].reduce(
    (a, xs) => a + cap(xs).length,
    0,
  );
  let done = 0;
  const run = (xs: SafetyItem[]) => {
    const rs = replies(model, tok, cap(xs), o.promptChars, o.maxNewTokens, (n) => o.progress?.(done + n, total));
    done += rs.length;
    return rs;
  };
  const harmful = run(harmfulItems),
    benign = run(benignItems);
  const look = run(sets.lookalikes),
    jail = run(sets.jailbreaks),
    all = [...harmful, ...benign, ...look, ...jail];
  const pr = run(probeItems); // one batched generation
  const probe = probeRates((k) => rate(pr.filter((r) => r.item.kind === PROBE_KINDS[k])));
  const guardUnsafeReplyRate = o.guard
    ? classifyShared(
        o.guard,
        all.map((r) => r.text),
        "completion",
      ).filter((v) => v.unsafe).length / all.length
    : null;
  const decide = (xs: SafetyItem[]) => itemDecisionsShared(model, tok, cap(xs), o.promptChars);
  const harmfulDecisions = decide(harmfulItems),
    benignDecisions = decide(benignItems); // one forward pass each, for the AUC and the guarded rates
  const decision = rocSummary(harmfulDecisions.margin, benignDecisions.margin, [0.02, 0.05]);
  const gate = new Gate(model, tok, o.guard, o.steering ?? null);
  const guarded = (xs: SafetyItem[], d = decide(xs)) => guardedRate(gate, cap(xs), d);
  const withGuard = o.guard
    ? {
        rule: gate.rule!,
        harmfulRefusalRate: guarded(harmfulItems, harmfulDecisions),
        benignRefusalRate: guarded(benignItems, benignDecisions),
        lookalikeRefusalRate: guarded(sets.lookalikes),
        jailbreakDefenseRate: guarded(sets.jailbreaks),
        probe: probeRates((k) => guarded(ps[k])),
      }
    : null;
  return {
    harmfulRefusalRate: rate(harmful),
    benignRefusalRate: rate(benign),
    lookalikeRefusalRate: rate(look),
    jailbreakDefenseRate: rate(jail),
    probe,
    capabilityDelta: o.capabilityDelta ?? null,
    guardUnsafeReplyRate,
    decision,
    withGuard,
    intervals: refusalIntervals(harmful, benign),
    ...breakdowns(harmful, benign, jail),
    n: { harmful: harmful.length, benign: benign.length, lookalikes: look.length, jailbreaks: jail.length },
    examples: [harmful[0], harmful[harmful.length - 1], benign[0], look[0], jail[0], jail[1]]
      .filter((r): r is Reply => !!r)
      .map((r) => ({ kind: r.item.kind, prompt: r.item.text, reply: r.text, refused: r.refused })),
    wallMs: performance.now() - t0,
  };
}
