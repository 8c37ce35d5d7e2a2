// The dashboard in a real browser: Debian's chromium driven by playwright-core opens the page over a
// finished tiny run and over a run still in progress, and checks that curves were drawn with data, the
// bill and eval tables are there, and the page picks up new steps of the running run by itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import { chromium } from "playwright-core";
import { repoRoot, tempDir } from "../common/testing.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe } from "../pipeline/runner.js";
import { listRuns, mountDashboard, runView } from "../serve/dashboard.js";
import { listenLocal } from "../serve/listen.js";

const CHROMIUM = process.env.FRUGAL_CHROMIUM ?? "/usr/bin/chromium";

test("dashboard API: runs listed, a run's stages with metrics, bill and evals; unknown and unsafe names are 404", () => {
  const root = tempDir();
  runRecipe(readRecipe(join(repoRoot, "recipes/tiny.json")), {
    outDir: join(root, "tiny"),
    resume: false,
    quiet: true,
    noForecast: true,
  });
  assert.deepEqual(
    listRuns(root).map((r) => r.name),
    ["tiny"],
  );
  const v = runView(root, "tiny") as {
    stages: { metrics: unknown[]; eval: { pass1: number; passAtK: { k: number; value: number } | null } | null }[];
    bill: { stages: unknown[] };
  };
  assert.ok(v.stages.every((s) => s.metrics.length > 0 && s.eval));
  // the recipe samples 2 per problem: pass@2 is there, and never below pass@1
  for (const s of v.stages) assert.ok(s.eval!.passAtK!.k === 2 && s.eval!.passAtK!.value >= s.eval!.pass1);
  assert.ok(v.bill.stages.length >= 5);
  assert.equal(runView(root, "../etc"), null);
  assert.equal(runView(root, "nope"), null);
});

test(
  "dashboard in headless Chromium: charts drawn with data, tables present, a running run updates live",
  { skip: !existsSync(CHROMIUM) && `no chromium at ${CHROMIUM} (apt-get install chromium)` },
  async () => {
    const root = tempDir();
    runRecipe(readRecipe(join(repoRoot, "recipes/tiny.json")), {
      outDir: join(root, "tiny"),
      resume: false,
      quiet: true,
      noForecast: true,
    });
    const rates = {
      harmfulRefusalRate: 0.869,
      benignRefusalRate: 0.022,
      lookalikeRefusalRate: 0.358,
      jailbreakDefenseRate: 0.556,
    };
    writeFileSync(
      join(root, "tiny", "safety.json"),
      JSON.stringify({
        ...rates,
        capabilityDelta: -0.01,
        withGuard: { ...rates, harmfulRefusalRate: 0.968, rule: "steered" },
        intervals: {
          harmfulRefusalRate: [0.917, 0.98],
          benignRefusalRate: [0.015, 0.058],
          units: { harmful: 191, benign: 307 },
        },
      }),
    );
    const app = new Hono();
    mountDashboard(app, root);
    const { server, origin: url } = await listenLocal(app);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${url}/dashboard#tiny`);
      await page.waitForFunction(() => (window as unknown as { __charts: unknown[] }).__charts.length >= 5, null, {
        timeout: 20000,
      });
      const charts = await page.evaluate(() =>
        (window as unknown as { __charts: { title: string; points: number }[] }).__charts.map((c) => ({
          title: c.title,
          points: c.points,
        })),
      );
      assert.ok(
        charts.some((c) => c.title === "reward" && c.points > 1),
        JSON.stringify(charts),
      );
      assert.ok(charts.every((c) => c.points > 0));
      assert.ok((await page.locator(".uplot canvas").count()) >= charts.length);
      const text = await page.locator("main").innerText();
      assert.match(text, /evaluation/);
      assert.match(text, /bill/);
      assert.match(text, /sampled completions/);
      assert.match(text, /safe model\s+86\.9% \(95% CI 91\.7–98\.0%\)\s+2\.2% \(95% CI 1\.5–5\.8%\)/);
      assert.match(text, /191 harmful and 307 benign independent requests/);
      assert.match(text, /with its guard \(steered\)\s+96\.8%/);
      assert.deepEqual(errors, []);
      // a run in progress: copy it without run.json, add a GRPO step, and wait for the page to show it
      const live = join(root, "live");
      cpSync(join(root, "tiny"), live, { recursive: true });
      rmSync(join(live, "run.json"));
      await page.goto(`${url}/dashboard#live`);
      await page.waitForFunction(() => (window as unknown as { __charts: unknown[] }).__charts.length >= 5, null, {
        timeout: 20000,
      });
      const before = await page.evaluate(
        () =>
          (window as unknown as { __charts: { title: string; points: number }[] }).__charts.find(
            (c) => c.title === "reward",
          )!.points,
      );
      appendFileSync(
        join(live, "stages/grpo/metrics.jsonl"),
        JSON.stringify({ step: 99, reward: 0.5, accuracy: 0.5, lenMean: 10, kl: 0.01, clipFrac: 0, loss: 0 }) + "\n",
      );
      await page.waitForFunction(
        (n) =>
          (window as unknown as { __charts: { title: string; points: number }[] }).__charts.find(
            (c) => c.title === "reward",
          )?.points ===
          n + 1,
        before,
        { timeout: 15000 },
      );
      assert.match(await page.locator("main h2").innerText(), /in progress/);
    } finally {
      await browser.close();
      server.close();
    }
  },
);
