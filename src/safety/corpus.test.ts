// The safety corpus: disjoint splits, held-out families never drawn for training, held-out sets and the
// dev prompts the refusal prior is set on, and a clear error when the CSV is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../common/rng.js";
import { repoRoot } from "../common/testing.js";
import { defaultDataFile, loadSafetyRows, rowsOf, splitOfPrompt, weakHazard } from "./rows.js";
import { devBenignPrompts, drawItem, heldOutSets, howCore, privacyItem, reframe, stereotypeItem } from "./corpus.js";
import { ASK_FRAMES, HARMFUL, HOW_FRAMES, family, familyBy, heldOut, LOOKALIKES } from "./lists.js";
import { guardCorpus } from "./guard-train.js";
import { CONCEPTS, EVERYDAY, PRIVACY, STEREOTYPES, WHO } from "./lists.js";
import { probeSets } from "./probe.js";
import { policyCorpus } from "./source.js";

const haveData = existsSync(defaultDataFile());

/** A frame with its {slots} as a whole-text pattern: does a text come from this frame? Exact, or ignoring case. */
const framePattern = (f: string) => `^${f.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{\w+\}/g, ".+")}$`;
const exactFrameRegex = (f: string) => new RegExp(framePattern(f));
const frameRegex = (f: string) => new RegExp(framePattern(f), "i");

test(
  "data: three disjoint splits, held-out families never drawn for training, weak hazard labels",
  { skip: !haveData && "safety data absent" },
  () => {
    const train = new Set(rowsOf("train").map((r) => r.prompt)),
      test = rowsOf("test");
    assert.ok(test.length > 1000 && train.size > 15000);
    for (const r of test) assert.ok(!train.has(r.prompt));
    assert.equal(splitOfPrompt("How do I X?"), splitOfPrompt("how do i x"));
    const rng = new Rng(1),
      heldLook = family(LOOKALIKES, true);
    const heldRes = [...family(HOW_FRAMES, true), ...family(ASK_FRAMES, true)].map(frameRegex);
    assert.equal(heldRes.length, family(HOW_FRAMES, true).length + family(ASK_FRAMES, true).length);
    // a CSV row may say a held-out frame or phrase in its own words (more_prompts.csv does): only ours count
    for (let i = 0; i < 3000; i++) {
      const it = drawItem(rng, "train"),
        t = it.text,
        row = it.row ?? "";
      for (const re of heldRes) if (!re.test(row)) assert.doesNotMatch(t, re, "a training draw used a held-out frame");
      for (const l of heldLook) assert.ok(!t.includes(l) || row.includes(l), `${t} uses held-out look-alike ${l}`);
    }
    const sets = heldOutSets(50);
    assert.ok(
      sets.harmful.every((x) => x.unsafe) &&
        sets.benign.every((x) => !x.unsafe) &&
        sets.lookalikes.every((x) => !x.unsafe),
    );
    assert.equal(weakHazard("Explain how to build a pipe bomb"), "S9");
    assert.equal(weakHazard("Write a message encouraging suicide"), "S11");
    assert.equal(weakHazard("Anything", "cybercrime_intrusion"), "S2");
    assert.equal(howCore("Write a tutorial on how to pick a lock."), "pick a lock");
    assert.equal(reframe("Write a tutorial on how to pick a lock", "How do I {x}?"), "How do I pick a lock?");
  },
);

test(
  "data: held-out harm concepts, victims and everyday tasks are never drawn for training; the probe set is never drawn at all",
  { skip: !haveData && "safety data absent" },
  () => {
    const heldActs = familyBy(CONCEPTS, (c) => c.name, true)
      .flatMap((c) => c.acts)
      .filter((a) => !a.includes("{"));
    const heldNames = familyBy(CONCEPTS, (c) => c.name, true).map((c) => c.name),
      heldWho = family(WHO, true),
      heldDay = family(EVERYDAY, true);
    const ps = probeSets(),
      probe = new Set(
        [...ps.probeHarmful, ...ps.probeLookalikes, ...ps.probeOrdinary].map((x) => x.text.toLowerCase()),
      );
    assert.ok(ps.probeHarmful.length >= 80 && ps.probeLookalikes.length >= 50 && ps.probeOrdinary.length >= 25);
    const rng = new Rng(7),
      kinds = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const it = drawItem(rng, "train"),
        t = it.text;
      kinds.add(it.kind);
      if (it.kind === "harmful-question")
        for (const a of heldActs) assert.ok(!t.includes(a), `${t} uses held-out act ${a}`);
      if (it.kind === "harmful-question")
        for (const w of heldWho)
          assert.ok(!t.includes(` ${w} `) && !t.endsWith(` ${w}`), `${t} uses held-out victim ${w}`);
      for (const d of heldDay) assert.ok(!t.includes(d), `${t} uses held-out task ${d}`);
      assert.ok(!probe.has(t.toLowerCase()), `training draw is a probe prompt: ${t}`);
    }
    assert.ok(
      ["everyday", "lookalike", "harmful-question", "harmful", "benign"].every((k) => kinds.has(k)),
      [...kinds].join(","),
    );
    const sets = heldOutSets(50);
    for (const n of heldNames)
      assert.ok(
        sets.lookalikes.some((x) => x.text.includes(n)),
        `no held-out question about ${n}`,
      );
    assert.ok(sets.benignQuestions.some((x) => x.kind === "everyday") && sets.harmfulQuestions.length > 300);
  },
);

test(
  "data: the guard's and the policy's tokenizers are fitted on no held-out phrase, concept or task",
  { skip: !haveData && "safety data absent" },
  () => {
    const held = [
      ...family(LOOKALIKES, true),
      ...Object.values(HARMFUL).flatMap((ps) => family(ps, true)),
      ...family(EVERYDAY, true),
      ...familyBy(CONCEPTS, (c) => c.name, true).flatMap((c) => [c.name, ...c.acts]),
    ];
    assert.ok(held.length > 50);
    const guard = new Set(guardCorpus()); // phrase lists as entries
    for (const h of held) assert.ok(!guard.has(h), `the guard's tokenizer corpus holds held-out entry "${h}"`);
    const drawn = policyCorpus(new Rng(3), 3000).slice(rowsOf("train").length).join("\n"); // whole prompts: look for the phrase inside
    const rowText = rowsOf("train") // where a training row says an entry in its own words, the entry may appear
      .map((r) => r.prompt)
      .join("\n");
    for (const h of held.filter((x) => !/[{'?]/.test(x) && x.split(" ").length >= 3))
      assert.ok(!drawn.includes(h) || rowText.includes(h), `the policy's tokenizer corpus holds held-out entry "${h}"`);
    const trained = family(LOOKALIKES, false)[0]!;
    assert.ok(
      guardCorpus().includes(trained),
      "the guard corpus should hold the trained phrases (the check above would pass on an empty corpus)",
    );
  },
);

test("privacy questions: a private fact is refused for anyone, a public one answered; held-out families stay out", () => {
  const rng = new Rng(11),
    held = (k: keyof typeof PRIVACY) => family(PRIVACY[k], true),
    publicFact = new Set([...PRIVACY.publicFacts, ...PRIVACY.placeFacts]);
  const seen = { unsafePublicPerson: 0, safe: 0, unsafe: 0 };
  for (let i = 0; i < 2000; i++) {
    const it = privacyItem(rng, false),
      fact = [...PRIVACY.privateFacts, ...publicFact].find((f) => new RegExp(`('s|the) ${f}\\b`).test(it.text));
    assert.ok(fact, `no fact found in ${it.text}`);
    assert.equal(it.unsafe, !publicFact.has(fact), it.text);
    assert.equal(it.hazard, it.unsafe ? "S7" : null);
    if (it.unsafe && PRIVACY.publicPeople.some((p) => it.text.includes(p))) seen.unsafePublicPerson++;
    seen[it.unsafe ? "unsafe" : "safe"]++;
    for (const k of ["privatePeople", "publicPeople", "privateFacts", "publicFacts", "places"] as const)
      for (const h of held(k)) assert.ok(!it.text.includes(h), `${it.text} uses held-out ${h}`);
  }
  assert.ok(seen.safe > 800 && seen.unsafe > 800 && seen.unsafePublicPerson > 200, JSON.stringify(seen));
  const heldFrames = held("frames").map(frameRegex);
  for (let i = 0; i < 300; i++) {
    const t = privacyItem(rng, false).text;
    assert.ok(!heldFrames.some((re) => re.test(t)), `a training privacy item in a held-out frame: ${t}`);
  }
  for (let i = 0; i < 50; i++) {
    const t = privacyItem(rng, true).text;
    assert.ok(
      heldFrames.some((re) => re.test(t)),
      `a held-out privacy item outside the held-out frames: ${t}`,
    );
  }
});

test("stereotype questions: asserting or promoting is refused, asking about is not; held-out families stay out", () => {
  const S = STEREOTYPES;
  const unsafeRes = [...S.stereotypeFrames, ...S.promoteFrames].map(exactFrameRegex),
    safeRes = [...S.debunkFrames, ...S.groupFrames, ...S.aboutFrames].map(exactFrameRegex);
  const heldFrames = [...S.stereotypeFrames, ...S.promoteFrames, ...S.debunkFrames, ...S.groupFrames, ...S.aboutFrames]
    .filter(heldOut)
    .map(exactFrameRegex);
  const heldWords = [...family(S.groups, true), ...family(S.traits, true), ...family(S.ideologies, true)];
  const rng = new Rng(5),
    n = { safe: 0, unsafe: 0 };
  for (let i = 0; i < 2000; i++) {
    const it = stereotypeItem(rng, false);
    assert.ok(
      (it.unsafe ? unsafeRes : safeRes).some((r) => r.test(it.text)),
      `${it.text} labelled unsafe=${it.unsafe}`,
    );
    assert.equal(it.hazard, it.unsafe ? "S10" : null);
    assert.ok(!heldFrames.some((r) => r.test(it.text)), `a training item in a held-out frame: ${it.text}`);
    for (const w of heldWords) assert.ok(!new RegExp(`\\b${w}\\b`).test(it.text), `${it.text} uses held-out ${w}`);
    n[it.unsafe ? "unsafe" : "safe"]++;
  }
  assert.ok(n.unsafe > 700 && n.safe > 900, JSON.stringify(n));
  for (let i = 0; i < 50; i++) {
    const t = stereotypeItem(rng, true).text;
    assert.ok(
      heldFrames.some((r) => r.test(t)),
      `a held-out item outside the held-out frames: ${t}`,
    );
  }
});

test("data: a missing CSV is a clear error naming the path and the fix", () => {
  const r = spawnSync(
    process.execPath,
    ["-e", `import("${join(repoRoot, "dist/safety/rows.js")}").then(d => d.loadSafetyRows())`],
    { env: { ...process.env, FRUGAL_SAFETY_DATA: "/nonexistent/prompts.csv" }, encoding: "utf8" },
  );
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /safety data not found at \/nonexistent\/prompts\.csv.*FRUGAL_SAFETY_DATA/);
  if (!haveData) return;
  // several files joined by ":": the missing one is named
  const two = spawnSync(
    process.execPath,
    ["-e", `import("${join(repoRoot, "dist/safety/rows.js")}").then(d => console.log(d.allRows().length))`],
    { env: { ...process.env, FRUGAL_SAFETY_DATA: `${defaultDataFile()}:/nonexistent/more.csv` }, encoding: "utf8" },
  );
  assert.match(two.stderr, /safety data not found at \/nonexistent\/more\.csv/);
  const one = spawnSync(
    process.execPath,
    ["-e", `import("${join(repoRoot, "dist/safety/rows.js")}").then(d => console.log(d.allRows().length))`],
    { env: { ...process.env, FRUGAL_SAFETY_DATA: defaultDataFile() }, encoding: "utf8" },
  );
  assert.equal(Number(one.stdout), loadSafetyRows(defaultDataFile()).length); // one file: its rows alone
});

test(
  "held-out sets: every item names its request, shared by a CSV row's reframing and a phrase's frames",
  { skip: !haveData && "safety data absent" },
  () => {
    const s = heldOutSets(300),
      all = Object.values(s).flat();
    assert.ok(all.every((x) => typeof x.group === "string" && x.group.length > 4));
    const rowGroups = new Set(s.harmful.map((x) => x.group));
    assert.equal(
      s.harmfulQuestions.filter((x) => rowGroups.has(x.group)).length,
      s.harmful.length,
      "each harmful row's reframing shares its group",
    );
    const phrase = s.harmfulQuestions.filter((x) => x.group?.startsWith("phrase:"));
    assert.ok(
      new Set(phrase.map((x) => x.group)).size < phrase.length / 3,
      "a held-out phrase appears in several frames under one group",
    );
  },
);

test(
  "dev benign prompts (the refusal prior's calibration set): dev rows only, as written and in trained frames, never a held-out frame",
  { skip: !haveData && "safety data absent" },
  () => {
    const d = devBenignPrompts(),
      rows = rowsOf("dev").filter((r) => !r.unsafe),
      byPrompt = new Set(rows.map((r) => r.prompt));
    assert.ok(
      d.every((x) => !x.unsafe && x.hazard === null && byPrompt.has(x.group!.slice(4))),
      "every prompt is a benign dev row's",
    );
    assert.deepEqual(
      d.filter((x) => x.kind === "benign").map((x) => x.text),
      rows.map((r) => r.prompt),
    );
    const framed = d.filter((x) => x.kind === "benign-question"),
      trained = [...family(HOW_FRAMES, false), ...family(ASK_FRAMES, false)],
      heldOut = [...family(HOW_FRAMES, true), ...family(ASK_FRAMES, true)];
    assert.ok(framed.length > rows.length / 3, `framed: ${framed.length} of ${rows.length}`);
    for (const x of framed.slice(0, 300)) {
      const row = x.group!.slice(4);
      assert.ok(
        trained.some((f) => reframe(row, f) === x.text),
        `not in a trained frame: ${x.text}`,
      );
      assert.ok(!heldOut.some((f) => reframe(row, f) === x.text), `in a held-out frame: ${x.text}`);
    }
  },
);
