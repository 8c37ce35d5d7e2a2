// Countdown: the exactly-once rule against reward hacks, the at-most-once option, the search traces (they
// verify, keep their budget, fail honestly), behaviour counts, problem files and the pinned test file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../common/rng.js";
import { repoRoot } from "../common/files.js";
import { tempDir } from "../common/testing.js";
import { renderCompletion } from "../tokenizer/chat.js";
import { countdown, countdownProblem, countdownSubset } from "./countdown.js";
import {
  behaviourOf,
  calculatorStep,
  faithfulnessOf,
  legalMoveReferee,
  referee,
  reachable,
  searchTrace,
} from "./countdown-search.js";
import { problemFileText, readProblemFile } from "./problem-file.js";
import { r1Reward } from "./rewards.js";
import { problems, splitOf } from "./task.js";

const p = countdownProblem("countdown", [3, 5, 7, 2], 24);
const score = (completion: string, task = countdown) => r1Reward(0.1)(completion, { task, problem: p }).metrics;

test("countdown: a correct exactly-once answer scores 1", () => {
  assert.equal(score(renderCompletion("x", "(7-3)*(5+2)-4")).accuracy, 0, "4 is not given");
  assert.equal(score(renderCompletion("x", "3*(7+5)-2*6")).accuracy, 0);
  assert.equal(score(renderCompletion("x", "(7+5)*2*3/3")).accuracy, 0, "3 reused");
  assert.equal(score(renderCompletion("x", "3*7+5-2")).accuracy, 1);
  assert.equal(score(renderCompletion("x", " 3 * 7 + 5 - 2 ")).accuracy, 1, "spaces are fine");
});

test("countdown reward hacks all score 0 on accuracy", () => {
  const hacks: Record<string, string> = {
    "a number reused": renderCompletion("x", "(7-5)*3*(2+2)"),
    "one number left out": renderCompletion("x", "(5+7)*2"),
    "a number not given": renderCompletion("x", "3*7+3"),
    "the target alone": renderCompletion("x", "24"),
    "the expression hidden in <think>, answer empty": renderCompletion("3*7+5-2", ""),
    "the expression in <think>, the target as answer": renderCompletion("3*7+5-2=24", "24"),
    "an equation as the answer": renderCompletion("x", "3*7+5-2=24"),
    "several answer blocks": `<think>x</think><answer>24</answer><answer>3*7+5-2</answer>`,
    "two expressions in one answer": renderCompletion("x", "3*7+5-2, 3*7+5-2"),
    "fullwidth digits": renderCompletion("x", "３*７+５-２"),
    "Arabic-Indic digits": renderCompletion("x", "٣*٧+٥-٢"),
    "superscript digits": renderCompletion("x", "3*7+5-²"),
    "a unicode minus": renderCompletion("x", "3*7+5−2"),
    "a fraction that is not the target": renderCompletion("x", "(3+5)/(7*2)"),
    "division by zero": renderCompletion("x", "3*7+5-2+(7-7)/0"),
    "no think block": "<answer>3*7+5-2</answer>",
  };
  for (const [name, c] of Object.entries(hacks)) assert.equal(score(c).accuracy, 0, name);
});

test("countdown-subset accepts a number left out; exactly-once does not", () => {
  const c = renderCompletion("x", "(5+7)*2");
  assert.equal(score(c, countdownSubset).accuracy, 1);
  assert.equal(score(c, countdown).accuracy, 0);
  assert.equal(score(renderCompletion("x", "(7-5)*3*(2+2)"), countdownSubset).accuracy, 0, "reuse is still wrong");
});

test("generated problems: 1–99 numbers, a reachable target in 1–100, solved by the reference", () => {
  for (const q of problems(countdown, "train", 400, 5)) {
    assert.ok(q.data.nums.every((n) => n >= 1 && n <= 99));
    assert.ok(q.data.target >= 1 && q.data.target <= 100);
    assert.ok(reachable(q.data.nums).has(q.data.target), q.key);
    assert.ok(countdown.verify(q, countdown.solve(q).answer), q.key);
  }
});

test("search traces: solved ones verify and end in a check; budgets hold; failures give up", () => {
  const rng = new Rng(3);
  let failed = 0;
  for (const q of problems(countdown, "train", 300, 8, [4])) {
    const budget = rng.int(2, 8);
    const s = searchTrace(q.data.nums, q.data.target, { budget, shuffle: 0.3, pathOnly: false }, rng);
    const leaves = (s.reasoning.match(/ (yes|no)\b| none\b/g) ?? []).length;
    assert.ok(leaves <= budget, `${leaves} leaves > budget ${budget}: ${s.reasoning}`);
    if (s.solved) {
      assert.ok(countdown.verify(q, s.answer), `${q.key}: ${s.answer}`);
      assert.match(s.reasoning, / yes check [^]* ok$/);
    } else {
      failed++;
      assert.match(s.reasoning, /give up$/);
      assert.equal(countdown.verify(q, s.answer), false);
    }
  }
  assert.ok(failed > 10 && failed < 250, `${failed} of 300 failed at budgets 2–8`);
});

test("path-only traces show no dead ends; exploratory share is honoured", () => {
  const q = countdownProblem("countdown", [24, 51, 45, 18], 22);
  const s = searchTrace(q.data.nums, q.data.target, { budget: 1e9, shuffle: 0, pathOnly: true }, new Rng(1));
  assert.ok(s.solved && !/\b(no|back)\b/.test(s.reasoning), s.reasoning);
  assert.deepEqual(behaviourOf(s.reasoning), { candidates: 3, backtracks: 0, verifications: 1 });
  // over problems whose first try fails, an exploratory trace shows a dead end or gives up
  const rng = new Rng(2),
    hard = problems(countdown, "train", 400, 4, [4]).filter((x) => /\bno\b/.test(countdown.solve(x).reasoning));
  const share = (x: number) =>
    hard.filter((h) => /\bno\b/.test(countdown.trace!(h, rng, { exploratoryShare: x }).reasoning)).length / hard.length;
  assert.ok(hard.length > 40, `${hard.length}`);
  assert.equal(share(0), 0);
  assert.ok(share(1) > 0.8, `${share(1)}`);
  const half = share(0.5);
  assert.ok(half > 0.3 && half < 0.7, `${half}`);
});

test("behaviour counts candidates outside the check, backtracks and checks", () => {
  const text =
    "80-12=68 (5 37 68) 68-5=63 (37 63) 63-37=26 no back 37-5=32 (68 32) 68-32=36 yes check 37-5=32 68-32=36 ok";
  assert.deepEqual(behaviourOf(text), { candidates: 5, backtracks: 1, verifications: 1 });
  assert.deepEqual(behaviourOf("I give up"), { candidates: 0, backtracks: 0, verifications: 0 });
});

test("faithfulness: the solver's own searches are true to their steps; each kind of slip is counted", () => {
  const rng = new Rng(5);
  for (const q of problems(countdown, "train", 150, 6)) {
    const t = countdown.trace!(q, rng, { exploratoryShare: 0.8 });
    const f = faithfulnessOf(t.reasoning, q.data.nums, q.data.target);
    assert.equal(f.miscalculated, 0, t.reasoning);
    assert.ok((f.strayStates ?? 0) === 0 && (f.falseYes ?? 0) === 0, t.reasoning);
  }
  // 25 4 63 12 to 79: one wrong sum (63-12=50), one state that drops 4 instead of 25 (its parent: 25 4 50),
  // one leaf claimed "yes" at 71; "back" returns to the start, so the last state is checked against it
  const text =
    "63-12=50 (25 4 50 to 79) 50+25=75 (4 75 to 79) 75-4=71 yes 50+4=54 (4 54 to 79) 54+25=79 yes back " +
    "25-12=13 (4 63 13 to 79) 63+13=76 (4 76 to 79) 76+4=80 no";
  assert.deepEqual(faithfulnessOf(text, [25, 4, 63, 12], 79), {
    miscalculated: 1 / 8,
    strayStates: 1 / 5,
    falseYes: 1 / 2,
  });
  assert.deepEqual(faithfulnessOf("I give up", [1, 2, 3], 6), {});
  // a completion cut short inside a result: its last step is not counted, one in the middle is
  assert.deepEqual(faithfulnessOf("70-52=18 (30 28 18 to 64) 30+28=5", [70, 30, 52, 28], 64), {
    miscalculated: 0,
    strayStates: 0,
  });
  assert.equal(faithfulnessOf("70-52=1 (30 28 1 to 64) back", [70, 30, 52, 28], 64).miscalculated, 1);
  const byTask = countdown.behaviour!(text, countdownProblem("countdown", [25, 4, 63, 12], 79));
  assert.equal(byTask.falseYes, 0.5);
  assert.equal(countdown.behaviour!(text).falseYes, undefined, "without the problem, only counts");
});

test("calculator: at every '=' of the solver's searches it writes what the solver wrote next; answers verify", () => {
  const rng = new Rng(9);
  let calls = 0,
    solved = 0;
  for (const q of problems(countdown, "train", 100, 4)) {
    const t = countdown.trace!(q, rng, { exploratoryShare: 1 });
    const calc = countdown.calculator!(q);
    for (const m of t.reasoning.matchAll(/=/g)) {
      const head = t.reasoning.slice(0, m.index + 1),
        wrote = calc.write("<think>" + head);
      calls++;
      assert.ok(wrote !== null, head);
      const rest = t.reasoning.slice(m.index + 1);
      assert.ok(rest.startsWith(wrote) && /^( |$)/.test(rest.slice(wrote.length)), `${head} → ${wrote} | ${rest}`);
    }
    // the answer it writes from the check verifies exactly when the search found the target
    const answer = calc.write(`<think>${t.reasoning}</think><answer>`);
    assert.equal(answer !== null && countdown.verify(q, answer), countdown.verify(q, t.answer), t.reasoning);
    solved += answer !== null ? 1 : 0;
  }
  assert.ok(calls > 1000 && solved > 30, `${calls} calls, ${solved} answers`);
});

test("calculator: leaves, the check, and no help for a step that is not exact or not a step", () => {
  const [n, t] = [[70, 30, 52, 28], 64];
  assert.equal(calculatorStep("70-52=", n, t), "18 (30 28 18 to 64)");
  assert.equal(calculatorStep("70-52=18 (30 28 18 to 64) 30+28=58 (18 58 to 64) 58+18=", n, t), "76 no");
  // after a leaf the search is back at (30 28 18); after "back", at the start
  assert.equal(
    calculatorStep("70-52=18 (30 28 18 to 64) 30+28=58 (18 58 to 64) 58+18=76 no 30+18=", n, t),
    "48 (28 48 to 64)",
  );
  assert.equal(calculatorStep("70-52=18 (30 28 18 to 64) back 52-30=", n, t), "22 (70 28 22 to 64)");
  assert.equal(calculatorStep("52-30=22 (70 28 22 to 64) 70-28=42 (22 42 to 64) 42+22=", n, t), "64 yes");
  assert.equal(calculatorStep("42+22=64 yes check 52-30=", n, t), "22", "in the check, the result alone");
  assert.equal(calculatorStep("70-99=", n, t), null, "99 is not in the state");
  assert.equal(calculatorStep("70-52=18 (30 28 18 to 64) 70-30=", n, t), null, "70 was used");
  assert.equal(calculatorStep("30-70=", n, t), null, "negative");
  assert.equal(calculatorStep("70/28=", n, t), null, "a remainder");
  assert.equal(calculatorStep("70-52", n, t), null);
  assert.equal(calculatorStep("170-52=", n, t), null, "170 is not 70");
  // the answer is the last check's path, nested; a check that misquotes, misses the target or a number: none
  const done = "42+22=64 yes check 52-30=22 70-28=42 42+22=64 ok</think><answer>";
  assert.equal(calculatorStep(done, n, t), "(70-28)+(52-30)");
  assert.equal(calculatorStep("check 52-30=22 22+28=50 70-50=20 ok</think><answer>", n, t), null, "ends at 20");
  assert.equal(calculatorStep("check 52-30=22 70-28=42 42+22=65 ok</think><answer>", n, t), null, "a wrong result");
  assert.equal(calculatorStep("check 52-31=21 70-28=42 42+21=63 ok</think><answer>", n, t), null, "31 is not given");
  assert.equal(calculatorStep("check 70-30=40 40+28=68 ok</think><answer>", [70, 30, 28, 4], 68), null, "4 unused");
  assert.equal(calculatorStep("no check here</think><answer>", n, t), null);
  // a result equal to a given number: either may be used, the answer still uses each number once
  const same = calculatorStep("check 5-2=3 3*3=9 9+1=10 ok</think><answer>", [3, 5, 2, 1], 10)!;
  assert.ok(countdown.verify(countdownProblem("countdown", [3, 5, 2, 1], 10), same), same);
});

test("referee: lets through every word the solver writes itself, refusing only a repeat of a line it wrote", () => {
  const rng = new Rng(5);
  let checked = 0,
    repeats = 0;
  for (const q of problems(countdown, "train", 200, 6)) {
    const t = countdown.trace!(q, rng, { exploratoryShare: 1 }),
      calc = countdown.calculator!(q),
      text = `<think>${t.reasoning}</think><answer>${t.answer}</answer>`;
    // the model writes everything but what the calculator writes after each "="
    let i = 0;
    while (i < text.length) {
      const head = text.slice(0, i);
      const wrote = head.endsWith("=") ? calc.write(head) : null;
      if (wrote) {
        i += wrote.length;
        continue;
      }
      checked++;
      const next = text.startsWith("</think>", i) ? "</think>" : text[i]!; // one token
      if (!calc.allows!(head, next)) {
        // the solver may try one move twice from a state that holds a number twice, e.g. (5 5 3): 5+3 and 5+3
        // (the state it leaves may list the numbers in another order)
        const from = Math.max(head.lastIndexOf(" "), head.lastIndexOf(">")) + 1;
        const line = /^(\d+[-+*/]\d+=\d+)( \([\d ]+ to \d+\)| yes| no)/.exec(text.slice(from));
        assert.ok(line && text.slice(0, from).includes(line[1]!), `${head} ← ${next} (${line?.[0]})`);
        repeats++;
        i = from + line[0].length; // skip the repeated line
        continue;
      }
      i += next.length;
    }
  }
  assert.ok(checked > 20_000 && repeats < checked / 500, `${checked} characters, ${repeats} repeats`);
});

test("referee: refuses numbers not in the state, inexact or unseen moves, repeats, junk; the answer is free", () => {
  const ok = (text: string, next: string) => legalMoveReferee([70, 30, 52, 28])("<think>" + text, next);
  assert.ok(ok("", "7") && ok("7", "0") && ok("70", "-") && ok("70-", "5") && ok("70-5", "2") && ok("70-52", "="));
  assert.ok(!ok("", "9"), "no number in the state starts with 9");
  assert.ok(!ok("70-", "7"), "70 is not there twice");
  assert.ok(!ok("30-", "5"), "30-52 is negative");
  assert.ok(!ok("70/", "3"), "70/30 has a remainder");
  assert.ok(!ok("52*", "2"), "52*28 = 1456: over the solver's 1000");
  assert.ok(ok("70-52=18 (30 28 18 to 64) ", "3") && !ok("70-52=18 (30 28 18 to 64) 70", "-"), "70 was used");
  // a move already written from the same state, either way round for + and *, is refused; after "back", too
  const leaf = "70-52=18 (30 28 18 to 64) 30+28=58 (18 58 to 64) 58+18=76 no ";
  assert.ok(!ok(leaf + "30+2", "8") && !ok(leaf + "28+3", "0") && ok(leaf + "30-2", "8"));
  assert.ok(!ok("70-52=18 (30 28 18 to 64) back 70-5", "2") && ok("70-52=18 (30 28 18 to 64) back 52-3", "0"));
  // words: back, give up, check, ok, one space apart; the tool's own words and tags are not the model's to write
  for (const w of ["back", "give up", "check", "ok"])
    assert.ok(
      [...w].every((c, k) => ok(leaf + w.slice(0, k), c)),
      w,
    );
  assert.ok(
    !ok(leaf, "yes") && !ok(leaf, "(") && !ok(leaf.trimEnd(), "4") && !ok(leaf, " ") && !ok(leaf, " back"),
    "no junk, no double space",
  );
  assert.ok(!ok(leaf, "<|assistant|>") && ok(leaf, "</think>"));
  assert.ok(!ok(leaf + "30+2", " ") && !ok(leaf + "ba", " ") && ok(leaf + "back", " "), "a word ends when complete");
  // in the check: moves over the check's own numbers; repeating a search move is fine there
  const check = "70-52=18 (30 28 18 to 64) 30+28=58 (18 58 to 64) 58+18=76 no check 70-52=18 ";
  assert.ok(ok(check + "30+2", "8") && !ok(check + "70-3", "0"));
  assert.ok(ok("x</think><answer>", "9") && legalMoveReferee([1, 2])("no think yet", "("), "the answer is free");
});

test("referee: legal (a whole vocabulary at once) gives allows' verdicts at every point of a search", () => {
  const rng = new Rng(9),
    words = new Set(["</think>", "<answer>", "<|end|>", " ", ">", ">(", "", "  5", "ok 7", "\n"]);
  const texts: { nums: number[]; text: string }[] = [];
  for (let i = 0; i < 12; i++) {
    const nums = [rng.int(1, 99), rng.int(1, 99), rng.int(1, 99), ...(i % 2 ? [rng.int(1, 99)] : [])];
    const s = searchTrace(nums, rng.int(1, 200), { budget: 20, shuffle: 0.5, pathOnly: false }, rng);
    const text = "<think>" + s.reasoning + "</think><answer>" + s.answer + "</answer>";
    texts.push({ nums, text });
    // the vocabulary: pieces of the searches, with and without a leading space (as a BPE cuts them)
    for (let k = 0; k < 60; k++) {
      const at = rng.int(0, text.length - 1);
      words.add(text.slice(at, at + rng.int(1, 6)));
    }
  }
  const vocab = [...words];
  let judged = 0,
    allowed = 0;
  for (const { nums, text } of texts)
    for (let cut = 0; cut <= text.length; cut += 3) {
      const before = text.slice(0, cut),
        fast = referee(nums).legal(before, vocab),
        slow = referee(nums);
      vocab.forEach((w, v) => {
        assert.equal(
          fast[v],
          slow.allows(before, w) ? 1 : 0,
          `${JSON.stringify(before.slice(-30))} + ${JSON.stringify(w)}`,
        );
        allowed += fast[v]!;
        judged++;
      });
    }
  assert.ok(allowed > 500 && allowed < judged / 4, `${allowed} of ${judged} allowed`);
});

test("drills: 24 of the traces' own steps, every one right, the same for the same seed", () => {
  const a = countdown.drill!(new Rng(3)),
    steps = a.split(" ");
  assert.equal(steps.length, 24);
  for (const step of steps) {
    const m = /^(\d+)([-+*/])(\d+)=(\d+)$/.exec(step);
    assert.ok(m, step);
    const [x, y, z] = [Number(m[1]), Number(m[3]), Number(m[4])];
    const v = m[2] === "+" ? x + y : m[2] === "-" ? x - y : m[2] === "*" ? x * y : x / y;
    assert.equal(v, z, step);
  }
  assert.equal(countdown.drill!(new Rng(3)), a);
  assert.notEqual(countdown.drill!(new Rng(4)), a);
  assert.ok(new Set(steps.map((x) => x.replace(/[^-+*/]/g, ""))).size >= 2, "more than one operation");
});

test("problem files: a round trip, and a bad line fails naming its line", () => {
  const dir = tempDir("cd-file"),
    f = join(dir, "p.jsonl");
  const ps = problems(countdown, "test", 20, 1);
  writeFileSync(f, problemFileText(ps));
  assert.deepEqual(readProblemFile(f, countdown), ps);
  writeFileSync(f, problemFileText(ps.slice(0, 2)) + '{"nums":[1,2],"target":"3"}\n');
  assert.throws(() => readProblemFile(f, countdown), new RegExp(`${f}:3: expected \\{"nums"`));
  writeFileSync(f, "{nums: [1, 2]}\n");
  assert.throws(() => readProblemFile(f, countdown), /p\.jsonl:1: expected one JSON object per line/);
  writeFileSync(f, '{"nums":[1,2],"target":3,"extra":1}\n');
  assert.throws(() => readProblemFile(f, countdown), /:1: expected/);
  assert.throws(() => readProblemFile(join(dir, "none.jsonl"), countdown), /cannot read problem file/);
});

test("the pinned test file (1,000 test-split problems, 500 of 3 and of 4 numbers) and the dev file, as regenerated", () => {
  const f = join(repoRoot, "data/countdown/test.jsonl");
  const ps = readProblemFile(f, countdown);
  assert.equal(ps.length, 1000);
  assert.equal(ps.filter((q) => q.difficulty === 3).length, 500);
  assert.ok(
    ps.every((q) => splitOf(q.key) === "test"),
    "every pinned problem is held out from training draws",
  );
  assert.equal(readFileSync(f, "utf8"), problemFileText(problems(countdown, "test", 1000, 2026)));
  // the dev file, for choosing settings: test-split problems of another seed, less those in the test file
  const pinned = new Set(readFileSync(f, "utf8").split("\n")),
    dev = problemFileText(problems(countdown, "test", 1000, 7))
      .split("\n")
      .filter((l) => l && !pinned.has(l));
  assert.equal(readFileSync(join(repoRoot, "data/countdown/dev.jsonl"), "utf8"), dev.join("\n") + "\n");
  assert.equal(dev.length, 998);
});
