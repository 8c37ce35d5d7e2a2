// Data parallelism over MPI, end to end with `mpirun -np 2` on the tiny recipes: two ranks reproduce the one-process
// run (samples, rewards, evaluations and the safety report exactly; losses and weights up to the order of float
// sums), GRPO seeds spread between ranks train as one process would, a rank killed with SIGKILL ends the job and
// --resume finishes it with the weights of an uninterrupted two-rank run, ranks that disagree stop at start, and a
// missing binding says how to install it. Needs Open MPI (.ci/run installs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../common/testing.js";
import { allreduceModelMs, type Forecast } from "../cost/forecast.js";
import { readLedger } from "../cost/ledger.js";
import { makeBill, renderBill } from "../cost/bill.js";
import { device, loadPrices } from "../cost/prices.js";
import { mpiAddonPath } from "../engine/dist.js";
import { readSafetensors } from "../model/safetensors.js";
import { forecastRecipe } from "../pipeline/forecast.js";
import { readRecipe } from "../pipeline/recipe.js";
import { GRPO_TIMINGS } from "../rl/grpo.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";

const cli = join(repoRoot, "dist/cli/main.js"),
  tiny = join(repoRoot, "recipes/tiny.json");
const later = ["sft", "grpo", "rs-sft", "distill"];
// no single-copy (CMA) transfers: containers without ptrace rights would fail them
const mpiArgs = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none"];

function needMpi(): void {
  const v = spawnSync("mpirun", ["--version"], { encoding: "utf8" });
  assert.equal(v.status, 0, "mpirun is missing: apt-get install -y openmpi-bin libopenmpi-dev, then npm rebuild");
  assert.ok(existsSync(mpiAddonPath), `${mpiAddonPath} is missing: npm rebuild (mpicc must be on PATH)`);
}
const run2 = (args: string[]) =>
  spawnSync("mpirun", [...mpiArgs, "-np", "2", process.execPath, cli, ...args], { encoding: "utf8" });
const metrics = (out: string, stage: string) =>
  readFileSync(join(stageDir(out, stage), "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>);
const weightsHash = (out: string, stage: string) =>
  createHash("sha256")
    .update(readFileSync(join(stageDir(out, stage), "checkpoint/model.safetensors")))
    .digest("hex");
/** Counts and sampled quantities must match exactly; losses, norms and KL up to float-sum order. */
const EXACT = ["step", "tokens", "lr", "reward", "accuracy", "format", "lenMean", "lenMax", "truncated", "zeroVarFrac"];
const TIMING: string[] = ["wallMs", "commMs", ...GRPO_TIMINGS];

/** Runs `recipe` in one process, then its later stages on two ranks from the same first stages; compares them. */
function reproduces(recipe: string, first: string[], later: string[], ranksFlag = false): { a: string; b: string } {
  needMpi();
  const a = join(tempDir(), "one"),
    b = join(tempDir(), "two");
  runRecipe(readRecipe(recipe), { outDir: a, resume: false, quiet: true });
  // the later stages start from the same base: hundreds of pretraining steps would amplify float-order differences
  mkdirSync(join(b, "stages"), { recursive: true });
  cpSync(join(a, "recipe.json"), join(b, "recipe.json"));
  for (const s of first) cpSync(stageDir(a, s), stageDir(b, s), { recursive: true });
  const args = ["run", recipe, "--out", b, "--resume", "--quiet"];
  // `--ranks 2`: frugal starts mpirun itself
  const r = ranksFlag ? spawnSync(process.execPath, [cli, ...args, "--ranks", "2"], { encoding: "utf8" }) : run2(args);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.match(/^stage +pass@1/gm)?.length, 1, "only rank 0 prints the table");
  for (const s of later) {
    const ma = metrics(a, s),
      mb = metrics(b, s);
    assert.equal(mb.length, ma.length, `${s}: one metrics line per step (rank 0 alone writes)`);
    ma.forEach((x, i) => {
      for (const k of Object.keys(x)) {
        if (TIMING.includes(k)) continue;
        const u = x[k]!,
          v = mb[i]![k]!;
        if (EXACT.includes(k)) assert.equal(v, u, `${s} step ${i} ${k}`);
        else assert.ok(Math.abs(u - v) <= 1e-3 * Math.max(Math.abs(u), Math.abs(v)) + 1e-6, `${s} step ${i} ${k}`);
      }
    });
    const wa = readSafetensors(join(stageDir(a, s), "checkpoint/model.safetensors")).tensors,
      wb = readSafetensors(join(stageDir(b, s), "checkpoint/model.safetensors")).tensors;
    for (const [name, t] of wa) {
      const u = wb.get(name)!.data;
      let d = 0;
      t.data.forEach((x, j) => (d = Math.max(d, Math.abs(x - u[j]!))));
      assert.ok(d < 1e-4, `${s} ${name}: weights differ by ${d}`);
    }
  }
  const entries = readLedger(b).entries.filter((e) => e.kind === "train");
  assert.equal(entries.length, later.length);
  for (const e of entries) {
    assert.equal(e.ranks, 2);
    assert.ok(e.commS! > 0, `${e.stage} records its time in collectives`);
    assert.ok(Math.abs(e.deviceHours - (e.wallS / 3600) * e.count * 2) < 1e-12, "device-hours count both ranks");
    assert.equal(e.count * e.ranks!, 2, "two ranks on one machine share its 2 vCPUs (billed once, not twice)");
  }
  const bill = renderBill(makeBill(readLedger(b).entries));
  assert.match(bill, /2 MPI ranks: device-hours count every rank; [0-9.]+ s of rank 0's wall time was in collectives/);
  assert.match(bill, /\n\S+ +2×1×cpu-vcpu /, "each stage's device column shows ranks × devices per rank");
  forecastShared(a, b);
  return { a, b };
}

/**
 * The two-rank forecast (its calibration measured by both ranks, Calibration.shared) prices ranks that share one
 * machine and times every stage: a measurement left out would stand at its 1 s placeholder, 100× a tiny step.
 */
function forecastShared(one: string, two: string): void {
  const read = (dir: string) => JSON.parse(readFileSync(join(dir, "forecast.json"), "utf8")) as Forecast;
  const fa = read(one),
    fb = read(two);
  assert.equal(fb.ranks, 2);
  assert.equal(fb.count * 2, fa.count, "two ranks on one machine share its devices in the forecast too");
  assert.deepEqual(
    fb.stages.map((s) => s.name),
    fa.stages.map((s) => s.name),
  );
  fb.stages.forEach((s, i) => {
    const r = s.seconds / fa.stages[i]!.seconds;
    assert.ok(r > 0.1 && r < 10, `${s.name}: ${s.seconds} s on two ranks against ${fa.stages[i]!.seconds} s on one`);
  });
}

test("mpirun -np 2 reproduces the one-process run: samples, rewards, evals exactly; losses and weights closely", () => {
  const { a, b } = reproduces(tiny, ["base"], later);
  for (const s of later) {
    const ea = JSON.parse(readFileSync(join(stageDir(a, s), "eval.json"), "utf8")),
      eb = JSON.parse(readFileSync(join(stageDir(b, s), "eval.json"), "utf8"));
    for (const k of ["pass1", "greedyAccuracy", "formatRate", "meanLength"]) assert.equal(eb[k], ea[k], `${s} ${k}`);
  }
  assert.ok(
    metrics(b, "grpo").some((m) => m.gradNorm! > 0),
    "some GRPO step had a gradient to all-reduce",
  );
});

test("--ranks 2 reproduces the Safe stages: the guard's members split between ranks, safety SFT, GRPO, report", () => {
  const { a, b } = reproduces(join(repoRoot, "recipes/tiny-safe.json"), ["base"], ["guard", "safe-sft", "safe"], true);
  for (const unit of ["member-1/checkpoint/frugal.json", "words/words.safetensors", "sentences/sentences.safetensors"])
    assert.ok(existsSync(join(stageDir(b, "guard"), unit)), `the rank that trained it wrote ${unit}`);
  const report = (d: string) => {
    const r = JSON.parse(readFileSync(join(d, "safety.json"), "utf8"));
    delete r.wallMs;
    return r;
  };
  assert.deepEqual(report(b), report(a));
});

test("GRPO seeds on 2 ranks: each rank trains its seed whole and alone, as one process would; the stage averages", () => {
  needMpi();
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  recipe.stages[1].seeds = 2;
  const file = join(tempDir(), "seeds.json"),
    a = join(tempDir(), "one"),
    b = join(tempDir(), "two");
  writeFileSync(file, JSON.stringify(recipe));
  runRecipe(readRecipe(file), { outDir: a, resume: false, quiet: true });
  mkdirSync(join(b, "stages"), { recursive: true });
  cpSync(join(a, "recipe.json"), join(b, "recipe.json"));
  cpSync(stageDir(a, "base"), stageDir(b, "base"), { recursive: true });
  const r = run2(["run", file, "--out", b, "--resume", "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  const w = (out: string, sub: string) =>
    readSafetensors(join(stageDir(out, "grpo"), sub, "checkpoint/model.safetensors")).tensors;
  const [b0, b1, avg] = ["member-0", "member-1", "."].map((sub) => w(b, sub));
  for (const sub of ["member-0", "member-1"]) {
    const one = w(a, sub),
      two = w(b, sub);
    for (const [name, t] of one) {
      let d = 0;
      t.data.forEach((x, j) => (d = Math.max(d, Math.abs(x - two.get(name)!.data[j]!))));
      assert.ok(d < 1e-5, `${sub} ${name}: the rank's seed is the one-process seed (off by ${d})`);
    }
    const ma = readFileSync(join(stageDir(a, "grpo"), sub, "metrics.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean),
      mb = readFileSync(join(stageDir(b, "grpo"), sub, "metrics.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean);
    assert.equal(mb.length, ma.length, `${sub}: the rank that trained it wrote every step`);
    ma.forEach((l, i) => assert.equal(JSON.parse(mb[i]!).reward, JSON.parse(l).reward, `${sub} step ${i} samples`));
  }
  for (const [name, t] of avg)
    t.data.forEach((x, j) => {
      const mean = (b0.get(name)!.data[j]! + b1.get(name)!.data[j]!) / 2;
      assert.ok(Math.abs(x - mean) < 1e-6, `${name}[${j}]: ${x} is not the seeds' mean ${mean}`);
    });
  const entry = (out: string) => readLedger(out).entries.find((e) => e.stage === "grpo")!;
  assert.equal(entry(b).ranks, 2);
  assert.deepEqual(entry(b).tokens, entry(a).tokens, "both seeds' tokens are counted, once each");
});

/** Child processes of `pid` (the ranks mpirun started), from /proc. */
function children(pid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return Number(readFileSync(`/proc/${d}/stat`, "utf8").split(") ")[1]!.split(" ")[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

test("a rank killed with SIGKILL ends the job (no hang); --resume ends with an uninterrupted run's weights", async () => {
  needMpi();
  const whole = join(tempDir(), "whole"),
    cut = join(tempDir(), "cut");
  assert.equal(run2(["run", tiny, "--out", whole, "--quiet"]).status, 0);
  const child = spawn("mpirun", [...mpiArgs, "-np", "2", process.execPath, cli, "run", tiny, "--out", cut, "--quiet"]);
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const killed = await new Promise<number | null>((resolve) => {
    const timer = setInterval(() => {
      const m = join(stageDir(cut, "base"), "metrics.jsonl");
      if (existsSync(m) && readFileSync(m, "utf8").split("\n").length > 120) {
        clearInterval(timer);
        const ranks = children(child.pid!);
        if (ranks.length === 0) return resolve(null);
        process.kill(Math.max(...ranks), "SIGKILL");
        resolve(Math.max(...ranks));
      }
    }, 20);
    exited.then(() => (clearInterval(timer), resolve(null)));
  });
  assert.ok(killed, "the run finished before a rank could be killed");
  const t0 = Date.now(),
    code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("hang"), 60_000).unref())]);
  assert.notEqual(code, "hang", "the surviving rank hung after its peer died");
  assert.notEqual(code, 0);
  assert.ok(Date.now() - t0 < 60_000);
  assert.ok(!existsSync(join(stageDir(cut, "base"), "done.json")), "killed inside the first stage");
  const resumed = run2(["run", tiny, "--out", cut, "--resume", "--quiet"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  for (const s of ["base", ...later]) assert.equal(weightsHash(cut, s), weightsHash(whole, s), `${s} weights`);
});

/** One mpirun job of two ranks running frugal with different arguments (MPMD: rank 0 `a`, rank 1 `b`). */
const twoApps = (a: string[], b: string[]) =>
  spawnSync(
    "mpirun",
    [...mpiArgs, "-np", "1", process.execPath, cli, ...a, ":", "-np", "1", process.execPath, cli, ...b],
    { encoding: "utf8" },
  );

test("ranks that disagree on the recipe stop at start and name the difference", () => {
  needMpi();
  const dir = tempDir(),
    other = join(dir, "other.json");
  writeFileSync(other, JSON.stringify({ ...JSON.parse(readFileSync(tiny, "utf8")), seed: 4 }));
  const r = twoApps(
    ["run", tiny, "--out", join(dir, "run"), "--quiet"],
    ["run", other, "--out", join(dir, "run"), "--quiet"],
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /the 2 MPI ranks disagree, so none started:\n\s+rank 1 \(.*\) has recipe [0-9a-f]+, rank 0/);
  assert.ok(!existsSync(join(dir, "run", "stages")), "no stage started");
});

test("ranks whose checkpoints differ (no shared filesystem) stop before the first step and say so", () => {
  needMpi();
  const dir = tempDir(),
    stale = join(dir, "stale");
  runRecipe(
    { ...readRecipe(tiny), stages: readRecipe(tiny).stages.slice(0, 1) },
    { outDir: stale, resume: false, quiet: true, noForecast: true },
  );
  rmSync(join(stageDir(stale, "base"), "done.json")); // rank 1 finds a finished base checkpoint to resume from
  const r = twoApps(
    ["run", tiny, "--out", join(dir, "fresh"), "--quiet"],
    ["run", tiny, "--out", stale, "--resume", "--quiet"],
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /rank 1 holds other starting weights than rank 0: every rank must read the same checkpoint/);
  assert.ok(!existsSync(join(dir, "fresh", "stages", "base", "metrics.jsonl")), "no step ran");
});

test("started as an MPI rank without the binding: one line that says how to install it", () => {
  const r = spawnSync(process.execPath, [cli, "run", tiny, "--out", join(tempDir(), "run")], {
    encoding: "utf8",
    env: { ...process.env, OMPI_COMM_WORLD_SIZE: "2", FRUGAL_MPI_ADDON: "/nonexistent/frugal_mpi.node" },
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /started as one of 2 MPI ranks, but frugal's MPI binding did not load/);
  assert.match(r.stderr, /apt-get install -y openmpi-bin libopenmpi-dev/);
});

test("forecast on N ranks: data-parallel stages split N ways plus an all-reduce per step; billed N times", () => {
  assert.equal(allreduceModelMs({ latencyMs: 1, gbPerS: 1 }, 1e6, 1), 0);
  assert.equal(allreduceModelMs({ latencyMs: 1, gbPerS: 1 }, 1e6, 2), 1 + 1);
  assert.equal(allreduceModelMs({ latencyMs: 0, gbPerS: 2 }, 4e6, 4), (2 * 3 * 4e6) / 4 / 2e6);
  const recipe = readRecipe(tiny),
    prices = loadPrices();
  const f = forecastRecipe(recipe, prices, undefined, { ranks: 2, fit: { latencyMs: 1000, gbPerS: 1e9 } });
  assert.equal(f.ranks, 2);
  recipe.stages.forEach((s, i) => {
    const st = f.stages[i]!;
    assert.match(st.detail, /2 ranks, all-reduce/);
    assert.ok(st.seconds >= s.steps, `${s.name}: ${s.steps} all-reduces of ≥ 1 s each`);
  });
  const usdPerHour = device(prices, recipe.device.kind).usdPerHour;
  assert.ok(Math.abs(f.costUsd - (f.totalSeconds / 3600) * usdPerHour * recipe.device.count * 2) < 1e-9);
});

test("--ranks 2 with a budget: the ranks stop together, cleanly, and the job's status is 3", () => {
  needMpi();
  const out = join(tempDir(), "budget");
  const r = spawnSync(
    process.execPath,
    [cli, "run", tiny, "--out", out, "--quiet", "--ranks", "2", "--budget-usd", "1e-7"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stdout, /stopped: \w+: budget cap/);
  assert.doesNotMatch(r.stdout + r.stderr, /aborted|non-zero/, "mpirun sees a clean end, not an abort");
});

test("--ranks: a bad count, and a missing binding, are one line that says what to do", () => {
  const bad = spawnSync(process.execPath, [cli, "run", tiny, "--ranks", "1.5"], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--ranks expects a whole number or "auto", got "1.5"/);
  const env = { ...process.env, FRUGAL_MPI_ADDON: "/nonexistent/frugal_mpi.node" };
  const missing = spawnSync(process.execPath, [cli, "run", tiny, "--ranks", "2"], { encoding: "utf8", env });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--ranks 2 needs frugal's MPI binding .* apt-get install -y openmpi-bin/);
  const auto = spawnSync(process.execPath, [cli, "run", join(tempDir(), "nothing.json"), "--ranks", "auto"], {
    encoding: "utf8",
    env,
  });
  assert.match(auto.stderr, /--ranks auto: one process \(Open MPI or frugal's MPI binding is not installed/);
});

test("--ranks 2 into a pipe: plain progress lines, no terminal bars (mpirun gives ranks a pseudo-terminal)", () => {
  needMpi();
  const recipe = JSON.parse(readFileSync(join(repoRoot, "recipes/tiny-countdown.json"), "utf8"));
  delete recipe.eval;
  recipe.stages[0].steps = 6;
  recipe.stages[1].steps = 2;
  const file = join(tempDir(), "piped.json");
  writeFileSync(file, JSON.stringify(recipe));
  const env = { ...process.env, FRUGAL_PROGRESS_S: "0" };
  const r = spawnSync(process.execPath, [cli, "run", file, "--out", join(tempDir(), "out"), "--ranks", "2"], {
    encoding: "utf8",
    env,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /\x1b\[/, "no cursor codes in a pipe");
  assert.match(r.stdout, /^base step 6\/6 \(100%\)/m);
  assert.match(r.stdout, /^grpo step 2\/2 \(100%\)/m);
});
