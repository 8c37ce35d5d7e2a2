// The countdown CLI end to end: `tasks write` makes a problem file, `eval --problems` reads it (JSON report
// with behaviour counts, progress on stderr; with the calculator too), and a bad line stops eval naming the
// file and line. With the calculator (eval and sample), every step the model writes is exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../common/testing.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";

const cli = join(repoRoot, "dist/cli/main.js");
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 120_000 });

test("CLI: tasks write → eval --problems (JSON, behaviour), and a bad line named by eval", () => {
  const dir = tempDir("cd-cli"),
    f = join(dir, "p.jsonl");
  const w = run(["tasks", "write", "--task", "countdown", "--n", "6", "--seed", "3", "--out", f]);
  assert.equal(w.status, 0, w.stderr);
  assert.equal(readFileSync(f, "utf8").trim().split("\n").length, 6);
  const out = join(dir, "run");
  const recipe = readRecipe(join(repoRoot, "recipes/tiny-countdown.json"));
  runRecipe(
    { ...recipe, eval: undefined, stages: recipe.stages.slice(0, 1) },
    { outDir: out, resume: false, quiet: true },
  );
  const model = join(stageDir(out, "base"), "checkpoint");
  const args = ["eval", "--model", model, "--task", "countdown", "--problems", f, "--k", "2", "--max-tokens", "64"];
  const e = run([...args, "--json"]);
  assert.equal(e.status, 0, e.stderr);
  const r = JSON.parse(e.stdout);
  assert.equal(r.nProblems, 6);
  assert.equal(r.k, 2);
  for (const k of ["backtracks", "candidates", "solvedWithBacktrack", "verifications"]) assert.ok(k in r.behaviour, k);
  for (const k of ["miscalculated", "strayStates", "falseYes"])
    assert.ok(!(k in r.behaviour) || (r.behaviour[k] >= 0 && r.behaviour[k] <= 1), `${k}: ${r.behaviour[k]}`);
  const calc = run([...args, "--calculator", "--json"]);
  assert.equal(calc.status, 0, calc.stderr);
  const withTool = JSON.parse(calc.stdout);
  assert.equal(withTool.nProblems, 6);
  assert.ok(withTool.refusedPerCompletion >= 0 && !("refusedPerCompletion" in r));
  // the referee lets the model write legal moves only, and the tool computes each: every written step is exact
  for (const k of ["miscalculated", "strayStates", "falseYes"])
    assert.ok(!(k in withTool.behaviour) || withTool.behaviour[k] === 0, `${k}: ${withTool.behaviour[k]}`);
  // sample with the tool: a problem read from the prompt, every step the model writes computed exactly
  const sample = run(["sample", "--model", model, "--prompt", "49 16 12 to 53", "--calculator", "countdown"]);
  assert.equal(sample.status, 0, sample.stderr);
  const sj = run(["sample", "--model", model, "--prompt", "49 16 12 to 53", "--calculator", "countdown", "--json"]);
  const [one] = JSON.parse(sj.stdout);
  assert.ok(one.toolTokens > 0 && one.refused >= 0, sj.stdout);
  const reasoning = String(one.text).split("</think>")[0]!;
  for (const [, a, op, b, c] of reasoning.matchAll(/(\d+)([-+*/])(\d+)=(\d+)(?=[ <])/g))
    assert.equal(
      op === "+" ? +a! + +b! : op === "-" ? +a! - +b! : op === "*" ? +a! * +b! : +a! / +b!,
      +c!,
      `${a}${op}${b}=${c}`,
    );
  const badPrompt = run(["sample", "--model", model, "--prompt", "add 2 and 3", "--calculator", "countdown"]);
  assert.match(badPrompt.stderr, /the prompt must state a problem as the task writes it, e\.g\. "\d+( \d+)+ to \d+"/);
  const noCalc = run(["eval", "--model", model, "--task", "addition", "--calculator"]);
  assert.match(noCalc.stderr, /task addition has no calculator/);
  appendFileSync(f, '{"nums":[1,2,3],"target":6}\n{"nums":[1,"2"],"target":3}\n');
  const bad = run(args);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /p\.jsonl:8: expected \{"nums"/);
  const notFile = run(["eval", "--model", model, "--task", "addition", "--problems", f]);
  assert.match(notFile.stderr, /addition has no problem-file format/);
});
