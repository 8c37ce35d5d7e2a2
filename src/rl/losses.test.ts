// GRPO-family losses: hand-computed values on tiny inputs, and each analytic gradient against finite
// differences of its own loss.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  dapoLoss,
  drGrpoAdvantages,
  drGrpoLoss,
  grpoAdvantages,
  grpoLoss,
  gspoLoss,
  type LossInput,
  VARIANTS,
} from "./losses.js";

const near = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const p = { eps: 0.2, epsHigh: 0.28, beta: 0, maxLen: 4 };

/** one group of two completions: completion 0 has 1 token, completion 1 has 2 */
function input(adv: number[], logp = [-1, -2, -0.5], old = logp, ref = logp): LossInput {
  return {
    logp: Float32Array.from(logp),
    oldLogp: Float32Array.from(old),
    refLogp: Float32Array.from(ref),
    seq: Int32Array.of(0, 1, 1),
    seqLen: Int32Array.of(1, 2),
    group: Int32Array.of(0, 0),
    advantages: Float32Array.from(adv),
    nGroups: 1,
  };
}

test("advantages: GRPO divides by the group std (+1e-4), Dr. GRPO only centres", () => {
  const r = Float32Array.of(1, 0, 1, 1),
    g = Int32Array.of(0, 0, 1, 1);
  const a = grpoAdvantages(r, g, 2),
    d = drGrpoAdvantages(r, g, 2);
  near(a[0]!, 0.5 / 0.5001);
  near(a[1]!, -0.5 / 0.5001);
  near(a[2]!, 0);
  near(a[3]!, 0);
  assert.deepEqual(Array.from(d), [0.5, -0.5, 0, 0]);
});

test("GRPO, Dr. GRPO, DAPO at ratio 1 without KL: hand-computed losses and gradients", () => {
  const A = 0.5 / 0.5001;
  const g = grpoLoss(input([A, -A]), p);
  near(g.loss, 0);
  near(g.grad[0]!, -A / 2);
  near(g.grad[1]!, A / 4);
  near(g.grad[2]!, A / 4);
  const d = drGrpoLoss(input([0.5, -0.5]), p);
  near(d.loss, 0.0625);
  near(d.grad[0]!, -0.0625);
  near(d.grad[1]!, 0.0625);
  const o = dapoLoss(input([A, -A]), p);
  near(o.loss, A / 3);
  near(o.grad[0]!, -A / 3);
  near(o.grad[2]!, A / 3);
});

test("clipping: a positive advantage past 1+ε gets no gradient; a negative one keeps it; DAPO's upper clip is ε_high", () => {
  const up = Math.log(1.25);
  const pos = grpoLoss(input([1, 0], [-1 + up, -2, -0.5], [-1, -2, -0.5]), p);
  near(pos.grad[0]!, 0);
  near(pos.metrics.clipFrac, 1 / 3);
  const neg = grpoLoss(input([-1, 0], [-1 + up, -2, -0.5], [-1, -2, -0.5]), p);
  near(neg.grad[0]!, (1.25 * 1) / 2); // −w·ρ·A with w = 1/2, A = −1
  const dapo = dapoLoss(input([1, 0], [-1 + up, -2, -0.5], [-1, -2, -0.5]), p);
  near(dapo.grad[0]!, -1.25 / 3); // 1.25 < 1 + 0.28: not clipped
});

test("k3 KL term: value and gradient by hand", () => {
  const lp = Math.log(0.5),
    ref = Math.log(0.25);
  const out = grpoLoss(input([0, 0], [lp, -2, -0.5], [lp, -2, -0.5], [ref, -2, -0.5]), { ...p, beta: 0.1 });
  const D = 0.5 - Math.log(0.5) - 1;
  near(out.loss, (0.1 * D) / 2);
  near(out.grad[0]!, (0.1 * 0.5) / 2);
  near(out.metrics.kl, D / 3);
});

test("GSPO: one ratio per sequence, the geometric mean of its token ratios", () => {
  const old = [-1, -2, -0.5],
    lp = [-1, -2 + Math.log(1.1), -0.5 + Math.log(1.3)];
  const out = gspoLoss(input([0, -1], lp, old), { ...p, eps: 0.2, epsHigh: 0.2 });
  const s = Math.sqrt(1.1 * 1.3);
  near(out.loss, s / 2);
  near(out.grad[1]!, s / 2 / 2);
  near(out.grad[2]!, s / 4);
  near(out.grad[0]!, 0);
});

test("every variant's gradient matches finite differences of its loss", () => {
  const old = [-1.2, -0.7, -2.1, -0.3, -1.5],
    ref = [-1.0, -0.9, -2.0, -0.5, -1.4];
  const base: LossInput = {
    logp: Float32Array.from([-1.1, -0.8, -2.2, -0.35, -1.45]),
    oldLogp: Float32Array.from(old),
    refLogp: Float32Array.from(ref),
    seq: Int32Array.of(0, 0, 1, 2, 2),
    seqLen: Int32Array.of(2, 1, 2),
    group: Int32Array.of(0, 0, 1),
    advantages: Float32Array.of(0.7, -0.4, 1.1),
    nGroups: 2,
  };
  for (const v of Object.values(VARIANTS)) {
    const params = { eps: 0.3, epsHigh: 0.35, beta: 0.05, maxLen: 6 };
    const { grad } = v.loss(base, params);
    for (let t = 0; t < base.logp.length; t++) {
      const h = 1e-3,
        up = Float32Array.from(base.logp),
        dn = Float32Array.from(base.logp);
      up[t]! += h;
      dn[t]! -= h;
      const num = (v.loss({ ...base, logp: up }, params).loss - v.loss({ ...base, logp: dn }, params).loss) / (2 * h);
      near(grad[t]!, num, 2e-3);
    }
  }
});
