// The safety stages' own pieces: how safety-sft mixes safety draws with task traces in a batch, its schema's
// checks, and the task reward safety GRPO trains with (the format weight). Training itself is in pipeline.test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../../common/rng.js";
import { getTask } from "../../tasks/index.js";
import { mixBatch, SafetySft } from "./safety-sft.js";
import { SafetyGrpo, safetyGrpoSource } from "./safety-grpo.js";
import { splitSeconds } from "./guard.js";
import { join } from "node:path";
import { repoRoot } from "../../common/files.js";
import { loadPrices } from "../../cost/prices.js";
import { forecastRecipe } from "../forecast.js";
import { readRecipe } from "../recipe.js";
import type { SafetyJudge } from "../../safety/guard.js";
import { accuracyReward } from "../../tasks/rewards.js";
import type { Problem } from "../../tasks/task.js";
import type { CountdownData } from "../../tasks/countdown.js";

const kinds = (rng: Rng, s: { batchSize: number; safetyFrac: number; bucketByKind: boolean }) =>
  mixBatch(
    rng,
    s,
    () => "s",
    () => "t",
  );

test("mixBatch: rows drawn one by one mix kinds in a batch; bucketByKind gives one kind per batch", () => {
  const mixed = Array.from({ length: 200 }, (_, i) =>
    kinds(new Rng(i), { batchSize: 32, safetyFrac: 0.5, bucketByKind: false }),
  );
  assert.ok(mixed.filter((b) => new Set(b).size === 2).length > 190, "nearly every row-by-row batch holds both kinds");
  const bucketed = Array.from({ length: 400 }, (_, i) =>
    kinds(new Rng(i), { batchSize: 32, safetyFrac: 0.857, bucketByKind: true }),
  );
  assert.ok(
    bucketed.every((b) => b.length === 32 && new Set(b).size === 1),
    "every bucketed batch is of one kind",
  );
  const share = bucketed.filter((b) => b[0] === "s").length / bucketed.length;
  assert.ok(Math.abs(share - 0.857) < 0.06, `safety batches ${share}, expected ≈ 0.857`);
});

test("mixBatch: row by row it draws kinds and examples in the order the stage always did", () => {
  // the old inline loop: one rng draw for the kind, then the example's own draws, row after row
  const old = (rng: Rng) =>
    Array.from({ length: 16 }, () => (rng.next() < 0.5 ? `s${rng.int(0, 99)}` : `t${rng.int(0, 99)}`));
  const rng = new Rng(3);
  const now = mixBatch(
    rng,
    { batchSize: 16, safetyFrac: 0.5, bucketByKind: false },
    () => `s${rng.int(0, 99)}`,
    () => `t${rng.int(0, 99)}`,
  );
  assert.deepEqual(now, old(new Rng(3)));
});

test("SafetySft: a calculator on a task without one is refused, naming the field", () => {
  const base = { type: "safety-sft", name: "s", from: "a", steps: 1, batchSize: 2 };
  const r = SafetySft.safeParse({ ...base, task: "addition", calculator: true });
  assert.ok(!r.success && r.error.issues.some((i) => i.path.includes("calculator")));
  const ok = SafetySft.parse({
    ...base,
    task: "countdown",
    calculator: true,
    traceTokens: 512,
    maxLen: 640,
    bucketByKind: true,
  });
  assert.equal(ok.traceTokens, 512);
  assert.equal(SafetySft.parse({ ...base, task: "addition" }).traceTokens, 96, "addition recipes keep 96 tokens");
});

test("SafetySft: replays longer than maxLen holds are refused, naming both numbers", () => {
  const base = { type: "safety-sft", name: "s", from: "a", steps: 1, batchSize: 2, task: "countdown" };
  const r = SafetySft.safeParse({ ...base, traceTokens: 512, maxLen: 200 });
  assert.ok(!r.success);
  const issue = r.error.issues.find((i) => i.path.includes("traceTokens"));
  assert.match(
    issue?.message ?? "",
    /traceTokens 512 \+ the task's longest prompt \(\d+ tokens\) must stay under maxLen 200/,
  );
  assert.ok(SafetySft.safeParse({ ...base, traceTokens: 512, maxLen: 640 }).success);
});

test("safetyGrpoSource: a well-formed wrong countdown answer earns R1's format reward only at formatWeight > 0", () => {
  const guard: SafetyJudge = { threshold: 0.5, classify: (t) => t.map(() => ({ unsafe: false, p: 0 }) as never) };
  const stage = (extra: object) =>
    SafetyGrpo.parse({
      type: "safety-grpo",
      name: "r",
      from: "s",
      guard: "g",
      task: "countdown",
      steps: 1,
      safetyFrac: 0,
      ...extra,
    });
  const src0 = safetyGrpoSource(stage({ formatWeight: 0 }), guard),
    srcDefault = safetyGrpoSource(stage({}), guard);
  const [item] = src0.draw(new Rng(5), 1);
  assert.equal(item!.kind, "task");
  const p = (item as { p: Problem<CountdownData> }).p;
  const wrong = `<think>try</think><answer>${p.data.nums.join("+")}</answer>`;
  const acc = accuracyReward(wrong, { task: getTask("countdown"), problem: p }).reward;
  assert.equal(acc, 0, "the sum of the numbers misses this problem's target");
  assert.equal(src0.reward(wrong, item!).reward, 0);
  assert.ok(srcDefault.reward(wrong, item!).reward > 0, "R1's default keeps the format reward");
});

test("guard forecast on ranks: its units split as guard-train assigns them, the longest rank's seconds", () => {
  const s = { members: 3, wordVectors: {} as never, sentenceVectors: {} as never };
  // member-0 on rank 0; sentences → 1, words → 0, member-1 → 0, member-2 → 1
  assert.deepEqual(splitSeconds(s, 2, 100, 105, 210), { seconds: 310, detail: "; its units split between 2 ranks" });
  assert.equal(splitSeconds(s, 1, 100, 105, 210).seconds, 615);
  assert.equal(splitSeconds(s, 3, 100, 105, 210).seconds, 210, "the sentences alone, the words beside member-2");
  assert.equal(splitSeconds({ members: 3 }, 4, 100, 0, 0).seconds, 100);
});

test("SafetySft merge: side by side hands on a model n times as wide; averaged, one as wide as a member", () => {
  const recipe = readRecipe(join(repoRoot, "recipes/tiny-safe.json")),
    prices = loadPrices();
  const sft = recipe.stages.find((s) => s.type === "safety-sft") as SafetySft;
  assert.equal(sft.members, 2);
  assert.equal(sft.merge, "side-by-side", "the default keeps the ensemble");
  const policyFlops = (merge: SafetySft["merge"]) => {
    const r = { ...recipe, stages: recipe.stages.map((s) => (s === sft ? { ...sft, merge } : s)) };
    const f = forecastRecipe(r, prices);
    return { sft: f.stages[2]!.flops, grpo: f.stages[3]!.flops };
  };
  const wide = policyFlops("side-by-side"),
    avg = policyFlops("average");
  assert.equal(avg.sft, wide.sft, "the members train alike either way");
  assert.ok(avg.grpo < 0.75 * wide.grpo, `safety GRPO on one member's width: ${avg.grpo} vs ${wide.grpo} FLOPs`);
  assert.throws(() => SafetySft.parse({ ...sft, merge: "mean" }), /side-by-side|average/);
});
