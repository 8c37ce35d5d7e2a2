// End to end on the tiny recipe: every stage runs, a run killed with SIGKILL and resumed ends with the
// same weights and metrics as an uninterrupted one, the budget cap stops cleanly, the ledger adds up and
// survives a damaged line, and bad recipes are rejected with the path of the problem.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../common/testing.js";
import { FrugalError } from "../common/errors.js";
import { exampleBill, makeBill } from "../cost/bill.js";
import { readLedger } from "../cost/ledger.js";
import { parsePriceTable } from "../cost/prices.js";
import { runLoop, type StageIO } from "../train/loop.js";
import { GRPO_TIMINGS } from "../rl/grpo.js";
import { parseRecipe, readRecipe } from "./recipe.js";
import { runRecipe, stageDir } from "./runner.js";
import { readSafetensors } from "../model/safetensors.js";
import { loadPrices } from "../cost/prices.js";
import { forecastRecipe } from "./forecast.js";

const cli = join(repoRoot, "dist/cli/main.js");
const tinyFile = join(repoRoot, "recipes/tiny.json");
const hash = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const weights = (out: string, stage: string) => hash(join(stageDir(out, stage), "checkpoint/model.safetensors"));
const metrics = (out: string, stage: string) =>
  readFileSync(join(stageDir(out, stage), "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const m = JSON.parse(l);
      for (const k of ["wallMs", ...GRPO_TIMINGS]) delete m[k];
      return m;
    });

test("tiny recipe: every stage (pretrain, SFT, GRPO, rejection-sampling SFT, distillation) runs end to end, evaluated and billed", () => {
  const out = join(tempDir(), "run");
  const r = runRecipe(readRecipe(tinyFile), { outDir: out, resume: false, quiet: true });
  assert.equal(r.stopped, null);
  assert.deepEqual(
    r.stages.map((s) => s.name),
    ["base", "sft", "grpo", "rs-sft", "distill"],
  );
  assert.equal(r.evals.length, 5);
  for (const s of r.stages) assert.ok(existsSync(join(stageDir(out, s.name), "checkpoint/model.safetensors")));
  const grpo = metrics(out, "grpo");
  for (const k of [
    "reward",
    "accuracy",
    "format",
    "lenMean",
    "lenMax",
    "reflections",
    "kl",
    "clipFrac",
    "zeroVarFrac",
    "entropy",
    "loss",
  ])
    assert.ok(k in grpo[0], `GRPO logs ${k}`);
  const { entries, skipped } = readLedger(out);
  assert.equal(skipped.length, 0);
  const bill = makeBill(entries, [], r.wallS);
  // the ledger covers the run: what no stage, eval or forecast entry covered is its own "run overhead" entry
  assert.ok(Math.abs(bill.totalWallS - r.wallS) < 1e-6, `ledger ${bill.totalWallS} s vs run ${r.wallS} s`);
  const overhead = entries.filter((e) => e.stage === "run overhead");
  assert.ok(
    overhead.length === 1 && overhead[0]!.kind === "setup" && overhead[0]!.wallS < 0.5 * r.wallS,
    JSON.stringify(overhead),
  );
  assert.ok(bill.totalUsd > 0 && bill.stages.every((s) => s.costUsd >= 0));
  // a crash mid-write leaves a truncated last line: it is skipped, named, and the rest still adds up
  appendFileSync(join(out, "ledger.jsonl"), '{"stage":"broken","wallS":1');
  const again = readLedger(out);
  assert.equal(again.entries.length, entries.length);
  assert.equal(again.skipped.length, 1);
  assert.match(again.skipped[0]!.reason, /not valid JSON/);
  assert.throws(
    () => runRecipe(readRecipe(tinyFile), { outDir: out, resume: false, quiet: true }),
    /already holds a run; pass --resume/,
  );
});

test("tiny countdown recipe: search pretraining, GRPO logging behaviour, eval on the pinned file", () => {
  const out = join(tempDir(), "run");
  const r = runRecipe(readRecipe(join(repoRoot, "recipes/tiny-countdown.json")), {
    outDir: out,
    resume: false,
    quiet: true,
  });
  assert.equal(r.stopped, null);
  const grpo = metrics(out, "grpo");
  for (const k of ["candidates", "backtracks", "verifications", "truncated", "lenMean", "refused"])
    assert.ok(typeof grpo[0][k] === "number" && grpo[0][k] >= 0, `GRPO logs ${k}: ${JSON.stringify(grpo[0])}`);
  const shares = grpo.map((m) => m.miscalculated).filter((x) => x !== undefined);
  assert.ok(shares.length > 0 && shares.every((x) => x >= 0 && x <= 1), `GRPO logs miscalculated: ${shares}`);
  assert.equal(r.evals.length, 2);
  for (const e of r.evals) {
    assert.equal(e.report.nProblems, 8, "the first 8 problems of the file");
    assert.equal(e.report.greedyAccuracy, null);
    assert.ok(e.report.refusedPerCompletion! >= 0, "sampled with the calculator and its referee");
    const keys = Object.keys(e.report.behaviour ?? {});
    for (const k of ["backtracks", "candidates", "solvedWithBacktrack", "verifications", "miscalculated"])
      assert.ok(keys.includes(k), `${k} in ${keys}`);
    assert.deepEqual(
      keys.filter((k) => !["backtracks", "candidates", "solvedWithBacktrack", "verifications"].includes(k)),
      keys.filter((k) => ["miscalculated", "strayStates", "falseYes"].includes(k)),
    );
  }
  assert.equal(r.evals[0]!.report.examples[0]!.prompt, "79 80 53 to 54", "the pinned file's first problem");
});

test("pretraining with drills: drill steps first, then a share of drill micro-batches; saved with the checkpoint", () => {
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  const run = (drills: Record<string, number>) => {
    const r = structuredClone(recipe);
    r.stages = [{ ...r.stages[0], steps: 8, ...drills }];
    const out = join(tempDir(), "run");
    runRecipe(parseRecipe(r, "tiny-countdown.json"), { outDir: out, resume: false, quiet: true });
    return { out, m: metrics(out, "base") };
  };
  const plain = run({}),
    drilled = run({ drillSteps: 3, drillShare: 0.5 });
  assert.equal(drilled.m.length, 8);
  // a drill is 24 steps of 5-12 characters; a 3-number trace with its prompt and template is longer or shorter,
  // but never the same batch: the first steps' token counts differ from the plain run's
  for (let i = 0; i < 3; i++) assert.notEqual(drilled.m[i].tokens, plain.m[i].tokens, `step ${i} trained on drills`);
  const saved = JSON.parse(readFileSync(join(stageDir(drilled.out, "base"), "checkpoint/frugal.json"), "utf8"));
  assert.deepEqual([saved.config.drillSteps, saved.config.drillShare], [3, 0.5]);
});

test("GRPO with legalPolicy: the same first samples, a softmax over legal tokens; it needs the calculator", () => {
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  recipe.stages[0].steps = 20;
  const run = (legalPolicy: boolean) => {
    const r = structuredClone(recipe);
    r.stages[1].legalPolicy = legalPolicy;
    const out = join(tempDir(), "run");
    runRecipe(parseRecipe(r, "tiny-countdown.json"), { outDir: out, resume: false, quiet: true });
    return metrics(out, "grpo");
  };
  const plain = run(false),
    legal = run(true);
  assert.equal(legal[0].reward, plain[0].reward, "the sampler is the same");
  assert.equal(legal[0].refused, plain[0].refused);
  assert.ok(plain[0].refused > 0, "the referee refused picks, so the two policies differ");
  // renormalised over fewer tokens, the legal policy is less uncertain where the referee judges
  assert.ok(legal[0].entropy < plain[0].entropy, `entropy ${legal[0].entropy} vs ${plain[0].entropy}`);
  const r = structuredClone(recipe);
  Object.assign(r.stages[1], { legalPolicy: true, calculator: false });
  assert.throws(() => parseRecipe(r, "c.json"), /stages.1.legalPolicy: legalPolicy needs the task's calculator/);
});

test("GRPO micro-batches: the same updates as one batch, up to the order of float sums", () => {
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  const run = (microBatch?: number) => {
    const r = structuredClone(recipe);
    if (microBatch) r.stages[1].microBatch = microBatch;
    const out = join(tempDir(), "run");
    runRecipe(parseRecipe(r, "tiny-countdown.json"), { outDir: out, resume: false, quiet: true });
    const w = readSafetensors(join(stageDir(out, "grpo"), "checkpoint/model.safetensors")).tensors;
    return { out, w };
  };
  const whole = run(),
    split = run(3); // 8 completions a step: chunks of 3, 3 and 2
  const a = metrics(whole.out, "grpo"),
    b = metrics(split.out, "grpo");
  assert.equal(a.length, b.length);
  a.forEach((m, i) => {
    assert.equal(b[i].reward, m.reward, "same samples");
    for (const k of ["loss", "kl", "gradNorm", "entropy"])
      assert.ok(
        Math.abs(b[i][k] - m[k]) <= 1e-4 * Math.max(1, Math.abs(m[k])),
        `step ${i} ${k}: ${b[i][k]} vs ${m[k]}`,
      );
  });
  let maxDiff = 0,
    moved = 0;
  for (const [name, t] of whole.w) {
    const u = split.w.get(name)!.data;
    t.data.forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - u[i]!))));
  }
  const base = readSafetensors(join(stageDir(whole.out, "base"), "checkpoint/model.safetensors")).tensors;
  for (const [name, t] of whole.w)
    t.data.forEach((x, i) => (moved = Math.max(moved, Math.abs(x - base.get(name)!.data[i]!))));
  assert.ok(moved > 1e-5, `GRPO moved the weights (${moved})`);
  assert.ok(maxDiff < 1e-6 + moved * 1e-3, `weights differ by ${maxDiff} (GRPO moved them by up to ${moved})`);
});

test("GRPO seeds: member 0 is the one-seed run, member 1 another, the stage's model their mean; forecast × 2", () => {
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  const run = (seeds: number) => {
    const r = structuredClone(recipe);
    r.stages[1].seeds = seeds;
    const out = join(tempDir(), "run");
    runRecipe(parseRecipe(r, "tiny-countdown.json"), { outDir: out, resume: false, quiet: true });
    return { out };
  };
  const one = run(1),
    two = run(2);
  const w = (out: string, sub: string) =>
    readSafetensors(join(stageDir(out, "grpo"), sub, "model.safetensors")).tensors;
  const single = w(one.out, "checkpoint"),
    m0 = w(two.out, "member-0/checkpoint"),
    m1 = w(two.out, "member-1/checkpoint"),
    avg = w(two.out, "checkpoint");
  let apart = 0,
    offMean = 0;
  for (const [name, t] of single) {
    assert.deepEqual(m0.get(name)!.data, t.data, `${name}: member 0 repeats the single run`);
    const a = m1.get(name)!.data,
      b = avg.get(name)!.data;
    t.data.forEach((x, i) => {
      apart = Math.max(apart, Math.abs(x - a[i]!));
      offMean = Math.max(offMean, Math.abs(b[i]! - (x + a[i]!) / 2));
    });
  }
  assert.ok(apart > 1e-5, `the second seed trained differently (${apart})`);
  assert.ok(offMean < 1e-6, `the stage's weights are the members' mean (off by ${offMean})`);
  const stageMetrics = readFileSync(join(stageDir(two.out, "grpo"), "metrics.jsonl"), "utf8");
  assert.equal(stageMetrics, readFileSync(join(stageDir(two.out, "grpo"), "member-0/metrics.jsonl"), "utf8"));
  // forecast: two seeds cost two runs on one process; on two ranks each rank runs one, with no all-reduce
  const both = structuredClone(recipe);
  both.stages.push({ ...both.stages[1], name: "grpo2", seeds: 2 });
  const parsed = parseRecipe(both, "seeds.json"),
    f = forecastRecipe(parsed, loadPrices()).stages;
  assert.ok(Math.abs(f[2]!.seconds - 2 * f[1]!.seconds) < 1e-9 * f[1]!.seconds, `${f[2]!.seconds} vs ${f[1]!.seconds}`);
  assert.equal(f[2]!.flops, 2 * f[1]!.flops);
  assert.match(f[2]!.detail, /^2 seeds × /);
  const on2 = forecastRecipe(parsed, loadPrices(), undefined, { ranks: 2, fit: { latencyMs: 1000, gbPerS: 1e9 } });
  assert.match(on2.stages[1]!.detail, /2 ranks, all-reduce/);
  assert.match(on2.stages[2]!.detail, /2 ranks, 1 per rank$/);
});

test("kill -9 mid-run, then --resume: same weights and metrics as an uninterrupted run", async () => {
  const dir = tempDir(),
    a = join(dir, "a"),
    b = join(dir, "b");
  const full = spawnSync(process.execPath, [cli, "run", tinyFile, "--out", a, "--quiet"], { encoding: "utf8" });
  assert.equal(full.status, 0, full.stderr);
  const child = spawn(process.execPath, [cli, "run", tinyFile, "--out", b, "--quiet"], { stdio: "ignore" });
  const killed = await new Promise<boolean>((resolve) => {
    const timer = setInterval(() => {
      const m = join(stageDir(b, "base"), "metrics.jsonl");
      if (existsSync(m) && readFileSync(m, "utf8").split("\n").length > 120) {
        clearInterval(timer);
        child.kill("SIGKILL");
        resolve(true);
      }
    }, 20);
    child.on("exit", () => {
      clearInterval(timer);
      resolve(false);
    });
  });
  assert.ok(killed, "the run finished before it could be killed");
  await new Promise((r) => child.on("exit", r));
  assert.ok(!existsSync(join(stageDir(b, "base"), "done.json")), "killed inside the first stage");
  const resumed = spawnSync(process.execPath, [cli, "run", tinyFile, "--out", b, "--resume", "--quiet"], {
    encoding: "utf8",
  });
  assert.equal(resumed.status, 0, resumed.stderr);
  for (const s of ["base", "sft", "grpo", "rs-sft", "distill"]) {
    assert.equal(weights(b, s), weights(a, s), `${s} weights differ after resume`);
    assert.deepEqual(metrics(b, s), metrics(a, s), `${s} metrics differ after resume`);
  }
});

test("budget cap: stops at a step boundary with the checkpoint saved, overshooting by at most one step", () => {
  const out = join(tempDir(), "run"),
    cap = 2e-6;
  const r = runRecipe(readRecipe(tinyFile), { outDir: out, resume: false, quiet: true, budgetUsd: cap });
  assert.match(r.stopped ?? "", /budget cap \$0.000002 reached/);
  const { entries } = readLedger(out);
  const stopped = entries.find((e) => e.stopped)!;
  const lines = readFileSync(join(stageDir(out, stopped.stage), "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { wallMs: number });
  const maxStepUsd = (Math.max(...lines.map((l) => l.wallMs)) / 1000 / 3600) * stopped.usdPerHour * stopped.count;
  // The cap is checked before each step: what was spent when the run stopped is at most the cap plus the step
  // that was running (1.5x for step-time noise). Saving the checkpoint and the run's overhead are billed after.
  const atStop = Number(/\$([0-9.e+-]+) spent/.exec(r.stopped ?? "")?.[1]);
  assert.ok(atStop <= cap + maxStepUsd * 1.5 + 1e-9, `spent ${atStop} at the stop vs cap ${cap} + step ${maxStepUsd}`);
  const billed = entries.reduce((a, e) => a + e.costUsd, 0);
  assert.ok(billed >= atStop * 0.999, `the ledger bills $${billed}, less than the $${atStop} spent at the stop`);
  assert.ok(existsSync(join(stageDir(out, stopped.stage), "checkpoint/model.safetensors")));
});

test("non-finite loss stops the stage, names the step and keeps the last good checkpoint", () => {
  const saved: number[] = [];
  const io: StageIO = {
    name: "s",
    dir: tempDir(),
    seed: 1,
    checkpointEvery: 2,
    progress: () => {},
    shouldStop: () => null,
  };
  assert.throws(
    () =>
      runLoop(
        io,
        0,
        10,
        (s) => {
          if (s === 5) throw new FrugalError("NONFINITE", "crossEntropy: loss holds NaN");
          return { metrics: { loss: 1 }, usage: { promptTokens: 0, generatedTokens: 0, trainedTokens: 0, flops: 0 } };
        },
        (s) => saved.push(s),
      ),
    /s: step 5 produced a non-finite value .* last good checkpoint \(before step 5\)/,
  );
  assert.deepEqual(saved, [2, 4]);
});

test("bad recipes: unknown keys, missing stage inputs, duplicate names — each names the problem", () => {
  const base = JSON.parse(readFileSync(tinyFile, "utf8"));
  const bad = (mut: (r: any) => void) => {
    const r = structuredClone(base);
    mut(r);
    return () => parseRecipe(r, "r.json");
  };
  assert.throws(
    bad((r) => {
      r.stages[0].learningRate = 1;
    }),
    /stages.0: Unrecognized key.*learningRate/,
  );
  assert.throws(
    bad((r) => {
      r.stages[1].from = "nope";
    }),
    /stage "sft" reads from "nope", which is not an earlier stage/,
  );
  assert.throws(
    bad((r) => {
      r.stages[1].name = "base";
    }),
    /two stages are named "base"/,
  );
  assert.throws(
    bad((r) => {
      r.stages[2].variant = "ppo";
    }),
    /stages.2.variant/,
  );
  assert.throws(
    bad((r) => {
      r.bogus = 1;
    }),
    /Unrecognized key.*bogus/,
  );
  assert.throws(
    bad((r) => {
      r.eval.task = "countdown";
      r.eval.problems = "data/countdown/missing.jsonl";
    }),
    /cannot read problem file .*missing\.jsonl/,
    "a missing problem file fails at parse time, before any stage runs",
  );
  assert.throws(
    bad((r) => {
      r.eval.problems = "data/countdown/test.jsonl";
    }),
    /addition has no problem-file format/,
  );
  assert.throws(
    bad((r) => {
      r.stages[0].tokenizer = "bpe";
    }),
    /stages.0.tokenizer: expected "char" or \{ "type": "bpe", "vocabSize": 300 or more/,
  );
  assert.throws(
    bad((r) => {
      r.stages[0].tokenizer = { type: "bpe", vocabSize: 100 };
    }),
    /stages.0.tokenizer.vocabSize/,
  );
  assert.throws(
    bad((r) => {
      r.stages[0].drillSteps = 5;
    }),
    /stages.0.drillSteps: drills need a task that has them \(countdown\)/,
    "addition has no drills",
  );
  const cd = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  cd.stages[0].drillSteps = cd.stages[0].steps;
  assert.throws(() => parseRecipe(cd, "c.json"), /stages.0.drillSteps: drillSteps must be fewer than steps/);
  const guard = JSON.parse(readFileSync(join(repoRoot, "recipes/guard.json"), "utf8"));
  for (const [k, v] of [
    ["maxLen", 128],
    ["accumulate", 2],
  ] as const) {
    const r = structuredClone(guard);
    r.stages[0][k] = v; // the guard reads its model's context, one batch a step
    assert.throws(() => parseRecipe(r, "g.json"), new RegExp(`stages.0: Unrecognized key.*${k}`));
  }
  const g = base.stages.findIndex((s: { type: string }) => s.type === "grpo");
  assert.throws(
    bad((r) => {
      r.stages[g].overlongCache = 64; // grpo's loss never reads it
    }),
    /stages.\d+.overlongCache: overlongCache shapes the reward only under variant dapo; variant grpo ignores it/,
  );
  assert.throws(
    bad((r) => {
      Object.assign(r.stages[g], { variant: "dr-grpo", epsHigh: 0.3 });
    }),
    /stages.\d+.epsHigh: epsHigh clips the ratio only under variant dapo or gspo; variant dr-grpo clips at 1 ± eps/,
  );
  assert.doesNotThrow(
    bad((r) => {
      Object.assign(r.stages[g], { variant: "dapo", overlongCache: 64, epsHigh: 0.3 });
    }),
  );
  // a step's draws must fit its sampling seeds: refused when the recipe is read, before any stage trains
  assert.throws(
    bad((r) => {
      Object.assign(r.stages[g], { promptsPerStep: 16, groupSize: 8, refillRounds: 40 });
    }),
    /stages.\d+.refillRounds: refillRounds 40: \(refillRounds \+ 1\) × promptsPerStep × groupSize must be at most 4,096, got 5248/,
  );
  assert.doesNotThrow(
    bad((r) => {
      Object.assign(r.stages[g], { promptsPerStep: 16, groupSize: 8, refillRounds: 3 });
    }),
  );
  const f = join(tempDir(), "x.json");
  writeFileSync(f, "{ not json");
  assert.throws(() => readRecipe(f), /x.json is not valid JSON/);
});

test("price table: missing or negative prices are errors naming the device; DeepSeek-R1's bill totals $294K", () => {
  assert.throws(
    () =>
      parsePriceTable(
        { devices: { h9: { label: "x", usdPerHour: -1, peakFlops: 1, precision: "x", source: "s", date: "d" } } },
        "p.json",
      ),
    /p.json: devices.h9.usdPerHour/,
  );
  assert.throws(
    () =>
      parsePriceTable(
        { devices: { h9: { label: "x", peakFlops: 1, precision: "x", source: "s", date: "d" } } },
        "p.json",
      ),
    /devices.h9.usdPerHour/,
  );
  const b = exampleBill("deepseek-r1");
  assert.equal(b.totalUsd, 294_000);
  assert.equal(b.totalDeviceHours, 147_000);
  assert.deepEqual(
    b.stages.map((s) => s.costUsd),
    [202_000, 10_000, 82_000],
  );
});

test("every shipped recipe parses (recipes/*.json), so a recipe named in docs or errors exists and is valid", () => {
  const files = readdirSync(join(repoRoot, "recipes")).filter((f) => f.endsWith(".json"));
  for (const f of [
    "mini-r1.json",
    "countdown-r1.json",
    "tiny.json",
    "tiny-countdown.json",
    "tiny-safe.json",
    "guard.json",
  ])
    assert.ok(files.includes(f), `recipes/${f} is missing`);
  for (const f of files) assert.ok(readRecipe(join(repoRoot, "recipes", f)).stages.length > 0, f);
});
