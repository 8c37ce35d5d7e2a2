// The groups of a GRPO step: which of them have unequal rewards (the only ones with an advantage), and DAPO's
// dynamic sampling with re-drawing (refillRounds): further draws until promptsPerStep such groups are held.
// Sampling and scoring live in grpo.ts; this file only picks and joins groups.
import type { Sample } from "../model/sampler.js";
import type { GrpoConfig } from "./grpo.js";

export interface Rollout {
  seqs: number[][];
  masks: number[][];
  /** under legalPolicy, set by legalize: per sequence, the legal tokens at each trained target position */
  allowed?: ((Uint8Array | null)[] | undefined)[];
  samples: Sample[];
  rewards: Float32Array;
  group: Int32Array;
  metrics: Record<string, number>[];
}

/** The completions of groups whose rewards are not all equal, and the share of groups that are flat. */
export function dropFlatGroups(ro: Rollout, nGroups: number): { keep: number[]; zeroVarFrac: number } {
  const keep: number[] = [];
  let flat = 0;
  for (let g = 0; g < nGroups; g++) {
    const idx = [...ro.group.keys()].filter((i) => ro.group[i] === g);
    const r0 = ro.rewards[idx[0]!];
    if (idx.every((i) => ro.rewards[i] === r0)) flat++;
    else keep.push(...idx);
  }
  return { keep, zeroVarFrac: flat / nGroups };
}

/** gatherMs: the time in the gather of every rank's samples, waiting for the slowest rank included */
export type Drawn<I> = Rollout & { prompts: number; items: I[]; promptLens: number[]; gatherMs: number };

/**
 * refillRounds: the first draw's groups with unequal rewards, then those of further draws (round 1, 2, …) until
 * promptsPerStep such groups are held or the rounds run out; one rollout of those groups, in draw order.
 * `drawn` holds every round's rollout (for the step's usage).
 */
export function refilled<I>(
  first: Drawn<I>,
  more: (round: number) => Drawn<I>,
  cfg: GrpoConfig,
): { ro: Drawn<I>; drawn: Drawn<I>[] } {
  const drawn = [first],
    G = cfg.groupSize,
    parts: { ro: Drawn<I>; g: number }[] = [];
  const take = (ro: Drawn<I>) => {
    const kept = new Set(dropFlatGroups(ro, cfg.promptsPerStep).keep.map((i) => Math.floor(i / G)));
    for (const g of kept) if (parts.length < cfg.promptsPerStep) parts.push({ ro, g });
  };
  take(first);
  for (let r = 1; r <= cfg.refillRounds && parts.length < cfg.promptsPerStep; r++) {
    drawn.push(more(r));
    take(drawn[r]!);
  }
  const rows = parts.flatMap(({ ro, g }) => Array.from({ length: G }, (_, k) => ({ ro, i: g * G + k })));
  const ro: Drawn<I> = {
    items: parts.map(({ ro, g }) => ro.items[g]!),
    promptLens: rows.map(({ ro, i }) => ro.promptLens[i]!),
    seqs: rows.map(({ ro, i }) => ro.seqs[i]!),
    masks: rows.map(({ ro, i }) => ro.masks[i]!),
    samples: rows.map(({ ro, i }) => ro.samples[i]!),
    rewards: Float32Array.from(rows, ({ ro, i }) => ro.rewards[i]!),
    group: Int32Array.from(rows, (_, j) => Math.floor(j / G)),
    metrics: rows.map(({ ro, i }) => ro.metrics[i]!),
    prompts: rows.reduce((a, { ro, i }) => a + ro.promptLens[i]!, 0),
    gatherMs: drawn.reduce((a, d) => a + d.gatherMs, 0),
  };
  return { ro, drawn };
}
