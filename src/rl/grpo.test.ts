// GRPO's loss mask (the prompt and the tokens a tool wrote are not trained), and its policy update's shortcuts
// against one full batch.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as E from "../engine/index.js";
import type { Tensor } from "../engine/tensor.js";
import { Rng } from "../common/rng.js";
import { forward, initModel, tokenLogprobs } from "../model/transformer.js";
import { trainableParams } from "../model/lora.js";
import { tinyLlamaConfig } from "../model/testing.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { makeBatch } from "../train/batch.js";
import { GrpoConfig, lossMask, policyUpdate } from "./grpo.js";
import { refilled, type Drawn } from "./groups.js";
import { VARIANTS } from "./losses.js";

/** The parameters' gradients of a loss o over the rows `sel` of lp (one full batch: the reference). */
function referenceGrads(
  lp: Tensor,
  sel: number[],
  o: { loss: number; grad: Float32Array },
  grads: () => Float32Array[],
) {
  E.backward(
    E.scalarFn(lp, () => {
      const grad = new Float32Array(lp.data.length);
      sel.forEach((r, j) => (grad[r] = o.grad[j]!));
      return { value: o.loss, grad };
    }),
  );
  const full = grads();
  E.endStep();
  return full;
}

const sameGrads = (a: Float32Array[], b: Float32Array[]) =>
  a.forEach((g, i) => g.forEach((x, k) => assert.ok(Math.abs(x - b[i]![k]!) < 1e-6, `param ${i}[${k}]`)));

/** GRPO's loss at π_θ = π_old = π_ref over the trained rows `sel` of lp, one batch of B sequences of T positions. */
function onPolicyLoss(lp: Tensor, sel: number[], T: number, B: number, rewards: Float32Array, group: Int32Array) {
  const seq = Int32Array.from(sel.map((r) => Math.floor(r / T))),
    seqLen = new Int32Array(B),
    nGroups = new Set(group).size;
  for (const b of seq) seqLen[b]!++;
  const now = Float32Array.from(sel.map((r) => lp.data[r]!));
  return VARIANTS.grpo!.loss(
    {
      logp: now,
      oldLogp: now,
      refLogp: now,
      seq,
      seqLen,
      group,
      nGroups,
      advantages: VARIANTS.grpo!.advantages(rewards, group, nGroups),
    },
    { eps: 0.2, epsHigh: 0.28, beta: 0, maxLen: 129 },
  );
}

test("loss mask: prompt 0, completion 1, a tool's forced tokens 0", () => {
  assert.deepEqual(lossMask(2, 3), [0, 0, 1, 1, 1]);
  assert.deepEqual(lossMask(2, 5, [1, 2]), [0, 0, 1, 0, 0, 1, 1]);
  assert.deepEqual(lossMask(0, 2, []), [1, 1]);
});

/** A drawn rollout of groups of two, item names `${tag}${g}`, rewards as given, each sequence [round, index]. */
function drawnOf(tag: string, round: number, rewards: number[]): Drawn<string> {
  const n = rewards.length;
  return {
    items: Array.from({ length: n / 2 }, (_, g) => `${tag}${g}`),
    promptLens: rewards.map(() => 1),
    seqs: rewards.map((_, i) => [round, i]),
    masks: rewards.map(() => [0, 1]),
    samples: rewards.map((_, i) => ({ tokens: [i], text: "", finishReason: "stop" }) as never),
    rewards: Float32Array.from(rewards),
    group: Int32Array.from(rewards, (_, i) => Math.floor(i / 2)),
    metrics: rewards.map((r) => ({ accuracy: r })),
    prompts: n,
    gatherMs: round + 1,
  };
}

test("refill: groups of unequal rewards from further draws until promptsPerStep are held, in draw order", () => {
  const cfg = GrpoConfig.parse({ steps: 1, promptsPerStep: 4, groupSize: 2, refillRounds: 3 });
  const first = drawnOf("a", 0, [1, 1, 1, 0, 0, 0, 0, 1]),
    rounds: number[] = [];
  const more = (r: number) => {
    rounds.push(r);
    return drawnOf(r === 1 ? "b" : "c", r, [0, 1, 1, 1, 1, 0, 0, 1]);
  };
  const { ro, drawn } = refilled(first, more, cfg);
  assert.deepEqual(rounds, [1], "a second re-draw after four groups are held");
  assert.equal(drawn.length, 2);
  assert.deepEqual(ro.items, ["a1", "a3", "b0", "b2"]);
  assert.deepEqual([...ro.rewards], [1, 0, 0, 1, 0, 1, 1, 0]);
  assert.deepEqual([...ro.group], [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.deepEqual(ro.seqs, [
    [0, 2],
    [0, 3],
    [0, 6],
    [0, 7],
    [1, 0],
    [1, 1],
    [1, 4],
    [1, 5],
  ]);
  assert.equal(ro.prompts, 8);
  assert.equal(ro.gatherMs, 1 + 2, "the gathers of both draws");

  const few = GrpoConfig.parse({ steps: 1, promptsPerStep: 4, groupSize: 2, refillRounds: 1 });
  const flat = () => drawnOf("f", 1, [1, 1, 0, 0, 1, 1, 1, 0]);
  const short = refilled(first, flat, few);
  assert.deepEqual(short.ro.items, ["a1", "a3", "f3"], "the rounds ran out with three groups");
  assert.equal(short.drawn.length, 2);
});

test("policy update: length-sorted micro-batches, μ = 1 and β = 0 shortcuts give one full batch's gradient", () => {
  const model = initModel(tinyLlamaConfig(12, 16), 3),
    tokenizer = { tokenId: () => 0 } as unknown as Tokenizer;
  const rng = new Rng(5),
    lens = [9, 4, 12, 6, 7, 3, 10, 5];
  const seqs = lens.map((n) => Array.from({ length: n }, () => rng.int(1, 11)));
  const masks = seqs.map((s) => lossMask(2, s.length - 2, s.length > 6 ? [3] : []));
  // groups of 2; group 2 is flat (equal rewards): it is left out, its gradient being zero
  const rewards = Float32Array.of(1, 0, 0.1, 1, 0.5, 0.5, 0, 1),
    group = Int32Array.of(0, 0, 1, 1, 2, 2, 3, 3);
  const cfg = GrpoConfig.parse({ steps: 1, beta: 0, ppoEpochs: 1, microBatch: 2, promptsPerStep: 4, groupSize: 2 });
  const params = trainableParams(model),
    grads = () => [...params.values()].map((p) => Float32Array.from(p.grad));
  let fast: Float32Array[] = [];
  const u = policyUpdate(
    { model, tokenizer },
    model,
    { seqs, masks, rewards, group },
    [0, 1, 2, 3, 6, 7],
    4,
    cfg,
    () => {
      fast = grads();
      for (const p of params.values()) p.grad.fill(0);
      return 0;
    },
  );
  // the reference: every completion in one padded batch, π_old from the same weights, all four groups
  const batch = makeBatch(seqs, masks, 16, 0),
    sel = [...batch.mask.keys()].filter((r) => batch.mask[r]);
  const seq = Int32Array.from(sel.map((r) => Math.floor(r / batch.T))),
    seqLen = new Int32Array(8);
  for (const b of seq) seqLen[b]!++;
  const lp = tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T);
  const now = Float32Array.from(sel.map((r) => lp.data[r]!));
  const inp = { logp: now, oldLogp: now, refLogp: now, seq, seqLen, group, nGroups: 4 };
  const o = VARIANTS.grpo!.loss(
    { ...inp, advantages: VARIANTS.grpo!.advantages(rewards, group, 4) },
    {
      eps: 0.2,
      epsHigh: 0.28,
      beta: 0,
      maxLen: 129,
    },
  );
  const full = referenceGrads(lp, sel, o, grads);
  sameGrads(full, fast);
  assert.ok(
    full.some((g) => g.some((x) => Math.abs(x) > 1e-4)),
    "the gradient is not zero",
  );
  assert.ok(Math.abs(u.metrics.loss! - o.loss) < 1e-6);
  assert.equal(u.metrics.kl, undefined, "β = 0 runs no π_ref forward, so it reports no KL");
  assert.ok(u.metrics.entropy! > 0);
});

test("policy update under legalPolicy: each softmax over its allowed tokens, as one full batch", () => {
  const model = initModel(tinyLlamaConfig(12, 16), 4),
    tokenizer = { tokenId: () => 0 } as unknown as Tokenizer;
  const rng = new Rng(6),
    lens = [9, 5, 11, 7];
  const seqs = lens.map((n) => Array.from({ length: n }, () => rng.int(1, 11)));
  const masks = seqs.map((s) => lossMask(2, s.length - 2));
  // sequences 0 and 2 have allowed tokens at some positions (always their own token, and 1–5 others)
  const allowed = seqs.map((s, i) =>
    i % 2
      ? undefined
      : s.map((tok, x) =>
          x % 2 ? Uint8Array.from({ length: 12 }, (_, v) => (v === tok || v % x === 1 ? 1 : 0)) : null,
        ),
  );
  const rewards = Float32Array.of(1, 0, 0, 1),
    group = Int32Array.of(0, 0, 1, 1);
  const cfg = GrpoConfig.parse({ steps: 1, beta: 0, microBatch: 3, promptsPerStep: 2, groupSize: 2 });
  const params = trainableParams(model),
    grads = () => [...params.values()].map((p) => Float32Array.from(p.grad));
  let fast: Float32Array[] = [];
  policyUpdate({ model, tokenizer }, model, { seqs, masks, rewards, group, allowed }, [0, 1, 2, 3], 2, cfg, () => {
    fast = grads();
    for (const p of params.values()) p.grad.fill(0);
    return 0;
  });
  const batch = makeBatch(seqs, masks, 16, 0),
    sel = [...batch.mask.keys()].filter((r) => batch.mask[r]);
  const rows = Array.from(
    { length: batch.B * batch.T },
    (_, r) => allowed[Math.floor(r / batch.T)]?.[(r % batch.T) + 1],
  );
  const plain = E.noGrad(() =>
    Float32Array.from(tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T).data),
  );
  E.endStep();
  const lp = tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T, undefined, rows);
  assert.ok(
    sel.filter((r) => rows[r]).every((r) => lp.data[r]! > plain[r]! + 1e-5),
    "masked rows are renormalised",
  );
  const full = referenceGrads(lp, sel, onPolicyLoss(lp, sel, batch.T, 4, rewards, group), grads);
  sameGrads(full, fast);
});

test("log-probs at temperature τ: log-softmax of logits / τ, and GRPO trains the distribution it sampled", () => {
  const model = initModel(tinyLlamaConfig(12, 16), 8),
    tokenizer = { tokenId: () => 0 } as unknown as Tokenizer;
  const rng = new Rng(9),
    seqs = [8, 6, 9, 5].map((n) => Array.from({ length: n }, () => rng.int(1, 11)));
  const masks = seqs.map((s) => lossMask(2, s.length - 2));
  const batch = makeBatch(seqs, masks, 16, 0),
    sel = [...batch.mask.keys()].filter((r) => batch.mask[r]);
  const logits = E.noGrad(() => Float32Array.from(forward(model, batch.ids, batch.B, batch.T).data));
  const hot = E.noGrad(() => Float32Array.from(tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T).data));
  const cold = E.noGrad(() =>
    Float32Array.from(tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T, undefined, undefined, 0.5).data),
  );
  E.endStep();
  for (const r of sel) {
    const row = logits.subarray(r * 12, (r + 1) * 12),
      max = Math.max(...row.map((x) => x / 0.5));
    const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x / 0.5 - max), 0));
    assert.ok(Math.abs(cold[r]! - (row[batch.targets[r]!]! / 0.5 - lse)) < 1e-4, `row ${r}`);
    assert.ok(Math.abs(cold[r]! - hot[r]!) > 1e-4, `row ${r}: τ changed nothing`);
  }
  const rewards = Float32Array.of(1, 0, 0, 1),
    group = Int32Array.of(0, 0, 1, 1);
  const cfg = GrpoConfig.parse({ steps: 1, beta: 0, temperature: 0.5, promptsPerStep: 2, groupSize: 2 });
  const params = trainableParams(model),
    grads = () => [...params.values()].map((p) => Float32Array.from(p.grad));
  let fast: Float32Array[] = [];
  policyUpdate({ model, tokenizer }, model, { seqs, masks, rewards, group }, [0, 1, 2, 3], 2, cfg, () => {
    fast = grads();
    for (const p of params.values()) p.grad.fill(0);
    return 0;
  });
  const lp = tokenLogprobs(model, batch.ids, batch.targets, batch.B, batch.T, undefined, undefined, 0.5);
  sameGrads(referenceGrads(lp, sel, onPolicyLoss(lp, sel, batch.T, 4, rewards, group), grads), fast);
});
