// GRPO and its variants as small pure functions over per-token arrays. Each returns the loss and its
// gradient with respect to the policy's per-token log-probs (what engine.scalarFn needs), plus metrics.
//
// GRPO (DeepSeekMath; DeepSeek-R1, Nature 2025, Eq. 1–3), for a group of G outputs o_i of one prompt:
//   J = 1/G Σ_i 1/|o_i| Σ_t [ min(ρ_it·A_i, clip(ρ_it, 1−ε, 1+ε)·A_i) − β·D_KL(π_θ‖π_ref)_it ]
//   ρ_it = π_θ(o_it)/π_old(o_it),  A_i = (r_i − mean(r)) / std(r),
//   D_KL = π_ref/π_θ − log(π_ref/π_θ) − 1  (the k3 estimator, per token)
// and loss = −J, averaged over the prompts of a batch. Deviations, stated: std is the population std of
// the group plus 1e-4 (no division by zero when all rewards are equal — then A = 0 anyway).
// Variants (each a different pair of functions, not a flag):
//   Dr. GRPO: A_i = r_i − mean(r) (no std), and Σ_t over a constant L_max instead of 1/|o_i|;
//   DAPO:     decoupled clip [1−ε_low, 1+ε_high], token-level mean over all tokens of the batch, no KL,
//             (dynamic sampling and overlong shaping live in the rollout, see grpo.ts);
//   GSPO:     one sequence-level ratio s_i = exp(mean_t(log π_θ − log π_old)), clipped per sequence.

export interface LossInput {
  /** per-token log-probs: current policy, sampling (old) policy, reference policy (N tokens) */
  logp: Float32Array;
  oldLogp: Float32Array;
  refLogp: Float32Array;
  /** seq[t] = index of the completion token t belongs to; group[i] = prompt index of completion i */
  seq: Int32Array;
  seqLen: Int32Array;
  group: Int32Array;
  advantages: Float32Array;
  nGroups: number;
}
export interface LossOutput {
  loss: number;
  grad: Float32Array;
  metrics: { clipFrac: number; kl: number };
}
export interface LossParams {
  eps: number;
  epsHigh: number;
  beta: number;
  maxLen: number;
}

export type Advantages = (rewards: Float32Array, group: Int32Array, nGroups: number) => Float32Array;

function groupStats(
  rewards: Float32Array,
  group: Int32Array,
  nGroups: number,
): { mean: Float64Array; std: Float64Array } {
  const sum = new Float64Array(nGroups),
    sq = new Float64Array(nGroups),
    n = new Float64Array(nGroups);
  rewards.forEach((r, i) => {
    sum[group[i]!]! += r;
    sq[group[i]!]! += r * r;
    n[group[i]!]!++;
  });
  const mean = sum.map((s, g) => s / n[g]!),
    std = sq.map((s, g) => Math.sqrt(Math.max(0, s / n[g]! - mean[g]! ** 2)));
  return { mean, std };
}

/** GRPO: (r − mean) / (std + 1e-4) within each group. */
export const grpoAdvantages: Advantages = (rewards, group, nGroups) => {
  const { mean, std } = groupStats(rewards, group, nGroups);
  return rewards.map((r, i) => (r - mean[group[i]!]!) / (std[group[i]!]! + 1e-4));
};
/** Dr. GRPO: r − mean, no std division. */
export const drGrpoAdvantages: Advantages = (rewards, group, nGroups) => {
  const { mean } = groupStats(rewards, group, nGroups);
  return rewards.map((r, i) => r - mean[group[i]!]!);
};

/** Per-token clipped surrogate and its derivative with respect to log π_θ. */
function clipped(logp: number, old: number, A: number, lo: number, hi: number): [number, number, boolean] {
  const rho = Math.exp(logp - old);
  const unclipped = rho * A,
    clip = Math.min(Math.max(rho, lo), hi) * A;
  if (unclipped <= clip) return [unclipped, rho * A, false];
  return [clip, 0, true];
}
/** k3 KL per token and its derivative with respect to log π_θ. */
function k3(logp: number, ref: number): [number, number] {
  const x = ref - logp,
    ex = Math.exp(x);
  return [ex - x - 1, 1 - ex];
}

/** Token losses weighted by w(t); shared by GRPO, Dr. GRPO and DAPO, which differ only in weights and clip range. */
function tokenLoss(inp: LossInput, p: LossParams, weight: (t: number) => number, lo: number, hi: number): LossOutput {
  const N = inp.logp.length,
    grad = new Float32Array(N);
  let loss = 0,
    clippedN = 0,
    kl = 0;
  for (let t = 0; t < N; t++) {
    const A = inp.advantages[inp.seq[t]!]!,
      w = weight(t);
    const [surr, dSurr, c] = clipped(inp.logp[t]!, inp.oldLogp[t]!, A, lo, hi);
    const [d, dD] = p.beta > 0 ? k3(inp.logp[t]!, inp.refLogp[t]!) : [0, 0];
    loss -= w * (surr - p.beta * d);
    grad[t] = -w * (dSurr - p.beta * dD);
    clippedN += c ? 1 : 0;
    kl += k3(inp.logp[t]!, inp.refLogp[t]!)[0];
  }
  return { loss, grad, metrics: { clipFrac: N ? clippedN / N : 0, kl: N ? kl / N : 0 } };
}

/** GRPO as published: 1/G · 1/|o_i| per token, averaged over groups. */
export function grpoLoss(inp: LossInput, p: LossParams): LossOutput {
  const G = countPerGroup(inp);
  return tokenLoss(
    inp,
    p,
    (t) => {
      const i = inp.seq[t]!;
      return 1 / (inp.nGroups * G[inp.group[i]!]! * inp.seqLen[i]!);
    },
    1 - p.eps,
    1 + p.eps,
  );
}
/** Dr. GRPO: 1/G · 1/L_max (a constant, so long outputs are not favoured when wrong). */
export function drGrpoLoss(inp: LossInput, p: LossParams): LossOutput {
  const G = countPerGroup(inp);
  return tokenLoss(inp, p, (t) => 1 / (inp.nGroups * G[inp.group[inp.seq[t]!]!]! * p.maxLen), 1 - p.eps, 1 + p.eps);
}
/** DAPO: token-level mean over every token of the batch, decoupled clip range, no KL term. */
export function dapoLoss(inp: LossInput, p: LossParams): LossOutput {
  const N = inp.logp.length;
  return tokenLoss(inp, { ...p, beta: 0 }, () => 1 / N, 1 - p.eps, 1 + p.epsHigh);
}
/** GSPO: sequence-level ratio s_i = exp(mean_t log ρ_it), clipped per sequence; 1/G per sequence. */
export function gspoLoss(inp: LossInput, p: LossParams): LossOutput {
  const S = inp.seqLen.length,
    logRatio = new Float64Array(S),
    G = countPerGroup(inp);
  for (let t = 0; t < inp.logp.length; t++)
    logRatio[inp.seq[t]!]! += (inp.logp[t]! - inp.oldLogp[t]!) / inp.seqLen[inp.seq[t]!]!;
  const dSeq = new Float64Array(S);
  let loss = 0,
    clippedN = 0;
  for (let i = 0; i < S; i++) {
    const w = 1 / (inp.nGroups * G[inp.group[i]!]!);
    const [surr, d, c] = clipped(logRatio[i]!, 0, inp.advantages[i]!, 1 - p.eps, 1 + p.epsHigh);
    loss -= w * surr;
    dSeq[i] = -w * d;
    clippedN += c ? 1 : 0;
  }
  const grad = new Float32Array(inp.logp.length);
  let kl = 0;
  for (let t = 0; t < grad.length; t++) {
    const i = inp.seq[t]!;
    grad[t] = dSeq[i]! / inp.seqLen[i]!; // d s_i / d logp_t = s_i / |o_i|, folded into d
    const [d, dD] = k3(inp.logp[t]!, inp.refLogp[t]!);
    kl += d;
    if (p.beta > 0) {
      const w = 1 / (inp.nGroups * G[inp.group[i]!]! * inp.seqLen[i]!);
      loss += w * p.beta * d;
      grad[t]! += w * p.beta * dD;
    }
  }
  return { loss, grad, metrics: { clipFrac: S ? clippedN / S : 0, kl: grad.length ? kl / grad.length : 0 } };
}

function countPerGroup(inp: LossInput): Float64Array {
  const G = new Float64Array(inp.nGroups);
  for (let i = 0; i < inp.group.length; i++) G[inp.group[i]!]!++;
  return G;
}

export interface Variant {
  name: string;
  advantages: Advantages;
  loss: (inp: LossInput, p: LossParams) => LossOutput;
  dynamicSampling: boolean;
  overlong: boolean;
  /** the loss clips the ratio's upper side at 1 + epsHigh (else at 1 + eps) */
  clipHigh: boolean;
}
export const VARIANTS: Record<string, Variant> = {
  grpo: {
    name: "grpo",
    advantages: grpoAdvantages,
    loss: grpoLoss,
    dynamicSampling: false,
    overlong: false,
    clipHigh: false,
  },
  "dr-grpo": {
    name: "dr-grpo",
    advantages: drGrpoAdvantages,
    loss: drGrpoLoss,
    dynamicSampling: false,
    overlong: false,
    clipHigh: false,
  },
  dapo: {
    name: "dapo",
    advantages: grpoAdvantages,
    loss: dapoLoss,
    dynamicSampling: true,
    overlong: true,
    clipHigh: true,
  },
  gspo: {
    name: "gspo",
    advantages: grpoAdvantages,
    loss: gspoLoss,
    dynamicSampling: false,
    overlong: false,
    clipHigh: true,
  },
};
