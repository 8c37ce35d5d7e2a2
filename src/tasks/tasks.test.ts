// Tasks and rewards: property tests (reference solutions score 1, mutated answers 0) over thousands of
// problems, disjoint splits, unique knights solutions, known reward hacks, and hostile inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../common/rng.js";
import { getTask, TASK_CHARS, TASKS } from "./index.js";
import { problems, splitOf } from "./task.js";
import { solutions } from "./knights.js";
import { evaluate } from "./countdown.js";
import {
  accuracyReward,
  formatReward,
  overlongPenalty,
  parseCompletion,
  r1Reward,
  reflectionCount,
} from "./rewards.js";
import { renderCompletion } from "../tokenizer/chat.js";

const wrap = (answer: string, reasoning = "x") => renderCompletion(reasoning, answer);

/** Answers that must fail: a changed digit, a dropped character, an appended digit, a fullwidth look-alike. */
function mutations(answer: string, rng: Rng): string[] {
  const out: string[] = [];
  const digits = [...answer].map((c, i) => (/\d/.test(c) ? i : -1)).filter((i) => i >= 0);
  if (digits.length) {
    const i = rng.pick(digits),
      d = Number(answer[i]);
    out.push(answer.slice(0, i) + String((d + rng.int(1, 9)) % 10) + answer.slice(i + 1));
    out.push(answer.replace(/\d/, (c) => String.fromCharCode(0xff10 + Number(c)))); // "１" look-alike
  }
  out.push(answer + "1");
  return out;
}

for (const task of Object.values(TASKS)) {
  test(`${task.name}: reference solutions always verify, mutations never do (3,000 problems)`, () => {
    const rng = new Rng(9);
    for (const p of problems(task, "train", 3000, 1)) {
      const { answer, reasoning } = task.solve(p);
      assert.ok(task.verify(p, answer), `${p.key}: reference answer ${answer} rejected`);
      assert.equal(accuracyReward(wrap(answer, reasoning), { task, problem: p }).reward, 1);
      for (const m of mutations(answer, rng)) {
        // a mutated countdown expression may still be a valid solution; only count it wrong when it is
        if (task.name.startsWith("countdown")) {
          const v = evaluate(m);
          if (v && v.value[0] === p.data.target && v.value[1] === 1) continue;
        }
        if (task.name === "knights") continue; // knights answers hold no digits; tested below
        assert.equal(task.verify(p, m), false, `${p.key}: mutated answer ${m} accepted`);
      }
      for (const ch of task.prompt(p) + reasoning + answer)
        assert.ok(TASK_CHARS.includes(ch), `char ${JSON.stringify(ch)} outside TASK_CHARS`);
    }
  });

  test(`${task.name}: train and test splits are disjoint and deterministic`, () => {
    const train = new Set(problems(task, "train", 5000, 3).map((p) => p.key));
    const testKeys = problems(task, "test", 500, 3).map((p) => p.key);
    for (const k of testKeys) {
      assert.ok(!train.has(k));
      assert.equal(splitOf(k), "test");
    }
    assert.deepEqual(
      problems(task, "test", 20, 3).map((p) => p.key),
      testKeys.slice(0, 20),
    );
  });

  test(`${task.name}: 10,000 problems generate in well under a second`, () => {
    const t0 = performance.now();
    problems(task, "train", 10_000, 5);
    const ms = performance.now() - t0;
    assert.ok(ms < 5000, `took ${ms} ms`); // a loose guard against pathologies; the bench prints the figure
  });
}

test("knights: puzzles have exactly one solution; every other assignment is rejected", () => {
  const task = getTask("knights");
  for (const p of problems(task, "train", 500, 2, [2, 3, 4, 5])) {
    assert.equal(solutions(p.data.statements).length, 1);
    const n = p.data.statements.length,
      good = task.solve(p).answer,
      sol = solutions(p.data.statements)[0]!;
    for (let m = 0; m < 1 << n; m++) {
      const a = Array.from({ length: n }, (_, i) => `${"ABCDE"[i]} ${(m >> i) & 1 ? "knight" : "knave"}`).join(", ");
      const isSolution = sol.every((k, i) => ((m >> i) & 1) === (k ? 1 : 0));
      assert.equal(task.verify(p, a), isSolution, a);
      if (isSolution) assert.equal(a, good);
    }
    assert.equal(task.verify(p, good + ", A knight"), false);
    assert.equal(task.verify(p, good.split(", ").reverse().join(", ")), true); // order does not matter
  }
});

test("reward hacks score 0: several answer blocks, answer outside tags, <answer> inside <think>, text after", () => {
  const task = getTask("arithmetic"),
    p = problems(task, "train", 1, 1)[0]!,
    ex = { task, problem: p };
  const ans = task.solve(p).answer;
  const hacks = [
    `<think>x</think><answer>${ans}</answer><answer>${ans}</answer>`,
    `<think>x</think><answer>0</answer><answer>${ans}</answer>`,
    `<think>x</think>${ans}`,
    `${ans}`,
    `<think><answer>${ans}</answer></think><answer>${ans}</answer>`,
    `<think>x</think><answer>${ans}</answer> and also 7`,
    `<think>x</think><answer>${ans} or ${Number(ans) + 1}</answer>`,
    `<think>x<answer>${ans}</answer>`,
    `<answer>${ans}</answer>`,
    `<think>x</think><answer><think>${ans}</think></answer>`,
    `<think>x</think><answer>${[...ans].map((c) => String.fromCharCode(0xff10 + Number(c))).join("")}</answer>`,
  ];
  for (const h of hacks) assert.equal(accuracyReward(h, ex).reward, 0, h);
  assert.equal(accuracyReward(wrap(ans), ex).reward, 1);
  assert.equal(formatReward(`<think>a</think>\n<answer>b</answer>\n`, ex).reward, 1);
  assert.equal(formatReward(`<think>a</think><answer>b</answer>x`, ex).reward, 0);
  assert.equal(r1Reward(0.1)(wrap(ans), ex).reward, 1.1);
});

test("countdown: reused or invented numbers, division by zero and non-integer results score 0", () => {
  const task = getTask("countdown");
  const p = { task: "countdown", difficulty: 3, key: "k", data: { nums: [3, 5, 7], target: 22 } };
  assert.ok(task.verify(p, "3*5+7"));
  assert.ok(task.verify(p, "(7*3)+(5-5+5-5)") === false, "5 used twice");
  assert.equal(task.verify(p, "7*3+1"), false, "1 invented");
  assert.equal(task.verify(p, "22"), false, "22 invented");
  assert.equal(task.verify(p, "7/(5-5)+22"), false);
  assert.equal(task.verify(p, "(7+3)*5/2"), false);
  assert.equal(task.verify(p, "3*5+7="), false);
  assert.equal(task.verify(p, "eval('22')"), false);
});

test("hostile completions score 0 without throwing and in bounded time", () => {
  const rng = new Rng(1);
  const binary = String.fromCharCode(...Array.from({ length: 5000 }, () => rng.int(0, 65535)));
  const inputs = [
    "",
    "\u0000",
    binary,
    "x".repeat(1_000_000),
    "<think>" + "(".repeat(100_000) + "</think><answer>" + "(".repeat(5000) + "1" + ")".repeat(5000) + "</answer>",
    `<think>x</think><answer>${"(".repeat(150)}3${")".repeat(150)}</answer>`,
    `<think>${"<think>".repeat(3000)}</think><answer>1</answer>`,
  ];
  for (const task of Object.values(TASKS)) {
    const p = problems(task, "train", 1, 4)[0]!;
    for (const s of inputs) {
      const t0 = performance.now();
      assert.equal(accuracyReward(s, { task, problem: p }).reward, 0);
      assert.ok(performance.now() - t0 < 1000);
      assert.doesNotThrow(() => task.verify(p, s));
    }
  }
  assert.equal(parseCompletion("x".repeat(1_000_000)).wellFormed, false);
});

test("overlong shaping and reflection counts", () => {
  assert.equal(overlongPenalty(100, 200, 50), 0);
  assert.equal(overlongPenalty(175, 200, 50), -0.5);
  assert.equal(overlongPenalty(250, 200, 50), -1);
  assert.equal(reflectionCount("Wait, let me verify. wait... recheck"), 4);
});

test("unknown task lists the available ones", () => {
  assert.throws(
    () => getTask("sudoku"),
    /unknown task "sudoku"; available: addition, arithmetic, countdown, countdown-subset, knights/,
  );
});
