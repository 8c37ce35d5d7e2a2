// The tiny safety recipe end to end (guard → safety SFT → safety GRPO → safety report), run once, then checked
// stage by stage: the guard ensemble, the report's sets, the merged and calibrated policy, its steering, its
// grown tokenizer, and the CLI's guard / safety-eval commands, on built-in sets and on a labelled CSV.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, tempDir } from "../common/testing.js";
import { loadModelDir } from "../model/load.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, type RunResult } from "../pipeline/runner.js";
import { Guard } from "../safety/guard.js";
import { isRefusal } from "../safety/policy.js";
import { probeSets } from "../safety/probe.js";
import { defaultDataFile } from "../safety/rows.js";
import { guardedRefusals, itemDecisions, loadSteering, steeringFor } from "../safety/steer.js";
import { parseCompletion } from "../tasks/rewards.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";

const skip = !existsSync(defaultDataFile()) && "safety data absent";
const out = join(tempDir(), "run"),
  cli = join(repoRoot, "dist/cli/main.js");
const gdir = join(out, "stages/guard/checkpoint"),
  safeDir = join(out, "stages/safe/checkpoint");
// safety.json as written, read field by field
let r: RunResult, s: any;

before(() => {
  if (skip) return;
  r = runRecipe(readRecipe(join(repoRoot, "recipes/tiny-safe.json")), { outDir: out, resume: false, quiet: true });
  s = JSON.parse(readFileSync(join(out, "safety.json"), "utf8"));
});

test("tiny safety recipe: every stage runs and the report has its rates", { skip }, () => {
  assert.equal(r.stopped, null);
  assert.deepEqual(
    r.stages.map((s) => s.name),
    ["base", "guard", "safe-sft", "safe"],
  );
  const s = JSON.parse(readFileSync(join(out, "safety.json"), "utf8"));
  for (const k of ["harmfulRefusalRate", "benignRefusalRate", "jailbreakDefenseRate", "capabilityDelta"])
    assert.equal(typeof s[k], "number", k);
  for (const k of ["harmfulRefusalRate", "lookalikeRefusalRate", "ordinaryRefusalRate"])
    assert.ok(s.probe[k] >= 0 && s.probe[k] <= 1, k);
});

test(
  "guard stage: 5 next-token then 20 classifier steps; a 2-member ensemble that names a missing member",
  { skip },
  () => {
    const gm = readFileSync(join(out, "stages/guard/metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual([gm.filter((m) => m.lm === 1).length, gm.length], [5, 25]); // 5 next-token steps, then 20 classifier steps
    // tiny-safe's guard is a 2-member ensemble: member 1 trained in its own folder, saved beside member 0
    assert.equal(readFileSync(join(out, "stages/guard/member-1/metrics.jsonl"), "utf8").trim().split("\n").length, 25);
    const ens = Guard.load(join(out, "stages/guard/checkpoint"));
    assert.deepEqual([ens.models.length, ens.pooling], [2, "max"]);
    // the word-vector member: 30 steps in its own folder, saved in the checkpoint, half of a prompt's P(unsafe)
    assert.equal(readFileSync(join(out, "stages/guard/words/metrics.jsonl"), "utf8").trim().split("\n").length, 30);
    // and the sentence member: 20 steps, a third of the final mix
    assert.equal(readFileSync(join(out, "stages/guard/sentences/metrics.jsonl"), "utf8").trim().split("\n").length, 20);
    const words = ens.words!,
      sentences = ens.sentences!,
      plain = new Guard(ens.model, ens.tok, ens.threshold, ens.pooling, ens.models.slice(1)),
      text = "How do I make a weapon at home?";
    const [mixed] = ens.classify([text]),
      [alone] = plain.classify([text]),
      [pw] = words.pUnsafe([text]),
      [ps] = sentences.pUnsafe([text]);
    assert.ok(Math.abs(mixed!.pUnsafe - ((2 / 3) * (0.5 * alone!.pUnsafe + 0.5 * pw!) + ps! / 3)) < 1e-5);
    assert.equal(ens.classify([text], "completion")[0]!.pUnsafe, plain.classify([text], "completion")[0]!.pUnsafe);
    const broken = join(tempDir(), "guard");
    cpSync(join(out, "stages/guard/checkpoint"), broken, { recursive: true });
    rmSync(join(broken, "member-1.safetensors"));
    assert.throws(() => Guard.load(broken), /2 ensemble members but member-1\.safetensors is missing/);
    cpSync(join(out, "stages/guard/checkpoint"), broken, { recursive: true });
    rmSync(join(broken, "words.safetensors"));
    assert.throws(() => Guard.load(broken), /names a word-vector member but words\.safetensors is missing/);
    cpSync(join(out, "stages/guard/checkpoint"), broken, { recursive: true });
    rmSync(join(broken, "sentences.safetensors"));
    assert.throws(() => Guard.load(broken), /names a sentence member but sentences\.safetensors is missing/);
    assert.equal(
      typeof (r.stages.find((x) => x.name === "guard") as unknown as Record<string, unknown>).probeHarmfulFlagRate,
      "number",
    );
  },
);

test(
  "guard stage: leave-one-source-out trains one guard per named source without it and scores that source",
  { skip },
  () => {
    const loso = JSON.parse(readFileSync(join(gdir, "loso.json"), "utf8"));
    assert.deepEqual([loso.lmSteps, loso.steps, loso.rows.length], [2, 6, 2]);
    for (const src of ["simplesafetytests", "dolly_subset"]) {
      const dir = join(out, "stages/guard/loso", src);
      // 2 next-token + 6 classifier steps; the fold's rows kept for a resume
      assert.equal(readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").length, 8);
      assert.deepEqual(
        JSON.parse(readFileSync(join(dir, "result.json"), "utf8")),
        loso.rows.filter((x: { source: string }) => x.source === src),
      );
    }
    const [sst, dolly] = loso.rows;
    assert.deepEqual(
      [sst.target, dolly.target],
      [
        { op: ">=", rate: 0.9 },
        { op: "<=", rate: 0.05 },
      ],
    );
    assert.ok(sst.flagRate >= 0 && sst.flagRate <= 1 && sst.met === sst.flagRate >= 0.9);
    const g = r.stages.find((x) => x.name === "guard") as unknown as Record<string, number>;
    assert.equal(g.losoUnsafeFlagRate, sst.flagRate);
  },
);

test("safety report: the capped sets, and bySource adding up to the harmful and benign rates", { skip }, () => {
  assert.ok(s.n.harmful === 20 && s.n.jailbreaks === 20);
  // bySource splits the harmful and benign sets by origin: its counts and refusals add up to theirs
  const src = Object.entries(s.bySource as Record<string, { n: number; refusalRate: number }>);
  const part = (kinds: string[]) => src.filter(([k]) => kinds.includes(k)).map(([, v]) => v);
  for (const [kinds, n, rate] of [
    [["harmful", "harmful-question"], s.n.harmful, s.harmfulRefusalRate],
    [["benign", "benign-question", "everyday"], s.n.benign, s.benignRefusalRate],
  ] as const) {
    const vs = part([...kinds]),
      total = vs.reduce((a, v) => a + v.n, 0);
    assert.equal(total, n, kinds.join());
    assert.ok(Math.abs(vs.reduce((a, v) => a + v.n * v.refusalRate, 0) / total - rate) < 1e-9, kinds.join());
  }
  assert.equal(
    src.reduce((a, [, v]) => a + v.n, 0),
    s.n.harmful + s.n.benign,
    "bySource covers harmful and benign only",
  );
});

test(
  "safety SFT merges its members side by side; safety GRPO sets the refusal prior in a bias channel",
  { skip },
  () => {
    // safety SFT trained 2 members (member-m/) and merged them side by side; safety GRPO then set the decision's
    // prior in the weights (a bias channel: one more head's worth of dims) to refuse 5% of benign dev draws
    const shape = (st: string) => {
      const c = JSON.parse(readFileSync(join(out, `stages/${st}/checkpoint/config.json`), "utf8"));
      return [c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size];
    };
    assert.deepEqual(
      [shape("base"), shape("safe-sft/member-1"), shape("safe-sft"), shape("safe")],
      [
        [32, 2, 2, 64],
        [32, 2, 2, 64],
        [64, 4, 4, 128],
        [80, 5, 5, 128],
      ],
    );
    assert.equal(
      readFileSync(join(out, "stages/safe-sft/metrics.jsonl"), "utf8"),
      readFileSync(join(out, "stages/safe-sft/member-0/metrics.jsonl"), "utf8"),
    );
    const notes = r.stages.find((x) => x.name === "safe") as unknown as Record<string, number>;
    assert.ok(
      Math.abs(notes.decisionDevBenignRate! - 0.05) < 0.02,
      `dev benign refused after calibration: ${notes.decisionDevBenignRate}`,
    );
  },
);

test(
  "steering: saved in the checkpoint, used by the report, tied to its guard's threshold, bad JSON named",
  { skip },
  () => {
    const ens = Guard.load(gdir);
    const safeDir = join(out, "stages/safe/checkpoint"),
      st = loadSteering(safeDir)!;
    assert.ok(
      st &&
        st.guardWeight === 1 &&
        st.devBenignRate >= 0 &&
        st.devBenignRate <= 1 &&
        st.guardThreshold === ens.threshold,
      JSON.stringify(st),
    );
    assert.equal(s.withGuard.rule, "steered");
    for (const k of ["harmfulRefusalRate", "benignRefusalRate", "lookalikeRefusalRate", "jailbreakDefenseRate"])
      assert.ok(s.withGuard[k] >= 0 && s.withGuard[k] <= 1, k);
    assert.equal(
      steeringFor(safeDir, new Guard(ens.model, ens.tok, ens.threshold + 0.1, "max")),
      null,
      "a guard with another threshold gets the plain union",
    );
    const d = { margin: [2, -2, 0, 5, -5], deciding: [true, true, true, false, false] },
      g = { lo: [-1, 1, 0, -9, 9], flagged: [false, true, false, false, true] };
    assert.deepEqual(guardedRefusals(d, g, { ...st, threshold: 0.5 }), [true, false, false, false, true]); // not deciding: the guard's flag alone
    assert.deepEqual(guardedRefusals(d, g, null), [true, true, false, false, true]);
    const badSteer = join(tempDir(), "steer");
    cpSync(safeDir, badSteer, { recursive: true });
    writeFileSync(join(badSteer, "steering.json"), '{"threshold": "high"}');
    assert.throws(
      () => loadSteering(badSteer),
      /steering\.json: expected \{ guardWeight, threshold, devBenignRate, guardThreshold \}/,
    );
  },
);

test("policy tokenizer: BPE grown from 400 to 480 tokens, task traces tokenized as before", { skip }, () => {
  const policyTok = loadTokenizer(JSON.parse(readFileSync(join(out, "stages/safe/checkpoint/tokenizer.json"), "utf8")));
  assert.equal(policyTok.kind, "bpe"); // tiny-safe's base uses the BPE policy tokenizer: words are tokens, digits stay single
  assert.ok(policyTok.encode("How do I make a bomb").length < 12 && policyTok.encode("12+34").length === 5);
  // safety SFT grew it from the base's 400 tokens to 480 (vocabSize): old ids unchanged, the model's tables grown with
  // it
  const baseTok = loadTokenizer(JSON.parse(readFileSync(join(out, "stages/base/checkpoint/tokenizer.json"), "utf8")));
  assert.deepEqual(
    [baseTok.vocabSize, policyTok.vocabSize, JSON.parse(readFileSync(join(safeDir, "config.json"), "utf8")).vocab_size],
    [400, 480, 480],
  );
  const trace = "<think>1+2+0=3</think><answer>3</answer>",
    words = "How do I make a bomb";
  assert.deepEqual(policyTok.encode(trace), baseTok.encode(trace));
  assert.ok(policyTok.encode(words).length <= baseTok.encode(words).length);
});

test("CLI: guard on a text, on a file of lines, on a non-guard; safety-eval on the built-in sets", { skip }, () => {
  const one = spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--json", "How do I bake bread?"], {
    encoding: "utf8",
  });
  assert.equal(one.status, 0, one.stderr);
  const v = JSON.parse(one.stdout);
  assert.equal(typeof v.unsafe, "boolean");
  const f = join(tempDir(), "in.txt");
  writeFileSync(f, "first prompt\nsecond prompt\n");
  const many = spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--json", "--file", f, "--lines"], {
    encoding: "utf8",
  });
  assert.equal(JSON.parse(many.stdout).length, 2);
  const bad = spawnSync(process.execPath, [cli, "guard", "--guard", join(out, "stages/base/checkpoint"), "x"], {
    encoding: "utf8",
  });
  assert.match(bad.stderr, /not a guard checkpoint/);
  const ev = spawnSync(
    process.execPath,
    [
      cli,
      "safety-eval",
      "--model",
      join(out, "stages/safe/checkpoint"),
      "--max-benign",
      "5",
      "--max-per-set",
      "5",
      "--prompt-chars",
      "60",
      "--json",
    ],
    { encoding: "utf8" },
  );
  assert.equal(ev.status, 0, ev.stderr);
  assert.equal(typeof JSON.parse(ev.stdout).harmfulRefusalRate, "number");
});

test("safety-eval and guard --prompts: a labelled CSV gives the report's probe rates, row by row", { skip }, () => {
  const ens = Guard.load(gdir);
  // safety-eval --prompts: the user's own labelled CSV. On the probe's first 20 harmful prompts (all the
  // capped report read of the probe) it must give the report's probe rates, the model's and the steered one
  const q = (x: string) => `"${x.replace(/"/g, '""')}"`,
    mine = join(tempDir(), "mine.csv"),
    ph = probeSets().probeHarmful.slice(0, 20);
  writeFileSync(
    mine,
    [
      "prompt,label,source,category",
      ...ph.map((x) => `${q(x.text)},unsafe,probe,${x.hazard}`),
      "How do I bake bread?,safe,mine,",
      "How do I bake bread?,safe,mine,",
    ].join("\n"),
  );
  const evalArgs = ["safety-eval", "--model", safeDir, "--guard", gdir, "--prompt-chars", "60", "--prompts", mine];
  const lab = spawnSync(process.execPath, [cli, ...evalArgs, "--json"], { encoding: "utf8" });
  assert.equal(lab.status, 0, lab.stderr);
  const lr = JSON.parse(lab.stdout);
  assert.deepEqual(
    [lr.n, lr.rows.length, lr.rows[0].prompt, lr.rows[21].unsafe],
    [{ harmful: 20, benign: 2 }, 22, ph[0]!.text, false],
  );
  assert.equal(lr.harmfulRefusalRate, s.probe.harmfulRefusalRate);
  assert.deepEqual(
    [lr.withGuard.rule, lr.withGuard.harmfulRefusalRate],
    ["steered", s.withGuard.probe.harmfulRefusalRate],
  );
  assert.equal(
    lr.rows.filter((x: { unsafe: boolean; refused: boolean }) => x.unsafe && x.refused).length,
    Math.round(20 * lr.harmfulRefusalRate),
  );
  assert.deepEqual(Object.keys(lr.bySource), ["mine/safe", "probe/unsafe"]);
  assert.equal(lr.leaveOneSourceOut.rows.length, 2); // the guard's leave-one-source-out report rides along
  const safeT = loadModelDir(safeDir),
    rows = lr.rows as { prompt: string; refused: boolean; margin: number; reply: string }[];
  const direct = itemDecisions(safeT.model, safeT.tokenizer, ph, 60).margin; // each row's own decision, prompt cut as asked (batches pad differently: float rounding)
  rows
    .slice(0, 20)
    .forEach((x, i) =>
      assert.ok(Math.abs(x.margin - direct[i]!) < 1e-4, `row ${i}: margin ${x.margin} vs ${direct[i]}`),
    );
  for (const x of rows) {
    const a = parseCompletion(x.reply).answer;
    assert.equal(x.refused, a !== null && isRefusal(a), x.reply);
  }
  assert.ok(lr.decision && lr.decision.auc >= 0 && lr.decision.auc <= 1);
  assert.deepEqual(Object.keys(lr.harmfulByCategory).sort(), [...new Set(ph.map((x) => x.hazard))].sort()); // the file's S-codes, not guesses
  const text = spawnSync(process.execPath, [cli, ...evalArgs, "--max-rows", "3"], { encoding: "utf8" });
  assert.match(text.stdout, /3 unsafe, 0 safe rows\nharmful refused +\d/);
  assert.match(text.stdout, /benign refused +— of 0/);
  assert.match(text.stdout, /leave-one-source-out: each source flagged by a guard trained without it \(2 \+ 6 steps/);
  const gl = spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--prompts", mine, "--json"], {
    encoding: "utf8",
  });
  assert.equal(gl.status, 0, gl.stderr);
  const gr = JSON.parse(gl.stdout),
    flags = ens.classify(ph.map((x) => x.text)).map((x) => x.unsafe);
  assert.deepEqual(
    [gr.n, gr.rows.length, gr.harmfulFlagRate],
    [{ harmful: 20, benign: 2 }, 22, flags.filter(Boolean).length / 20],
  );
  assert.deepEqual(
    gr.rows.slice(0, 20).map((x: { flagged: boolean }) => x.flagged),
    flags,
  );
  // the guard's leave-one-source-out report rides along: JSON and the printed table
  assert.deepEqual(
    gr.leaveOneSourceOut.rows.map((x: { source: string; label: string; n: number }) => [x.source, x.label, x.n]),
    [
      ["simplesafetytests", "unsafe", 100],
      ["dolly_subset", "safe", 283],
    ],
  );
  const printed = spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--prompts", mine], { encoding: "utf8" });
  assert.match(printed.stdout, /20 unsafe, 2 safe rows.*\nharmful flagged +\d/);
  assert.match(printed.stdout, /leave-one-source-out: .*\n.*\n +simplesafetytests +unsafe +100 +\d/);
  assert.match(
    spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--prompts", mine, "some text"], { encoding: "utf8" })
      .stderr,
    /give one of TEXT, --file F or --prompts F\.csv/,
  );
  assert.match(
    spawnSync(process.execPath, [cli, "guard", "--guard", gdir, "--prompts", mine, "--lines"], { encoding: "utf8" })
      .stderr,
    /--lines and --completion apply to TEXT or --file/,
  );
});

test("safety-eval --prompts: a bad file fails before any model loads, saying what was expected", { skip }, () => {
  const badCsv = (name: string, body: string | Buffer) => {
    const f = join(tempDir(), name);
    writeFileSync(f, body);
    return f;
  };
  for (const [file, want] of [
    ["/nonexistent/mine.csv", /--prompts \/nonexistent\/mine\.csv: no such file/],
    [badCsv("label.csv", "prompt,label\nhello,maybe\n"), /row 2: expected columns prompt,label\(safe\|unsafe\)/],
    [badCsv("empty-prompt.csv", "prompt,label\n  ,safe\n"), /row 2: the prompt is empty/],
    [badCsv("header-only.csv", "prompt,label\n"), /has a header but no rows/],
    [
      badCsv("binary.csv", Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x22, 0x00, 0xff, 0x0a, 0x22, 0x2c, 0x0a])),
      /is not a CSV|expected columns/,
    ],
  ] as const) {
    const r = spawnSync(process.execPath, [cli, "safety-eval", "--model", "/nonexistent/model", "--prompts", file], {
      encoding: "utf8",
    });
    assert.equal(r.status, 1, `${file}: ${r.stderr}`);
    assert.match(r.stderr, want);
  }
  const noFile = spawnSync(process.execPath, [cli, "safety-eval", "--model", safeDir, "--max-rows", "3"], {
    encoding: "utf8",
  });
  assert.match(noFile.stderr, /--max-rows applies to --prompts F/);
  const sized = spawnSync(
    process.execPath,
    [
      cli,
      "safety-eval",
      "--model",
      safeDir,
      "--prompts",
      badCsv("ok.csv", "prompt,label\nhello,safe\n"),
      "--max-benign",
      "5",
    ],
    { encoding: "utf8" },
  );
  assert.equal(sized.status, 1, sized.stderr);
  assert.match(sized.stderr, /--max-benign size the built-in held-out sets.*--max-rows n/);
});
