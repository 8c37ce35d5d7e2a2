// The run dashboard: JSON endpoints over a runs directory (each run's stages with per-step metrics, eval
// rows with sampled completions, the bill from the ledger, the safety report) and one HTML page that draws
// them with uPlot and polls every 3 s, so a run in progress updates on screen. Read-only; no training here.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Hono } from "hono";
import { makeBill } from "../cost/bill.js";
import { readLedger } from "../cost/ledger.js";
import { PAGE } from "./dashboard-page.js";
import { mountWebgpuPage } from "./webgpu-page.js";

const MAX_POINTS = 600;
const readJson = (f: string): unknown => {
  try {
    return JSON.parse(readFileSync(f, "utf8"));
  } catch {
    return null;
  }
};

/** Every n-th line of metrics.jsonl, at most MAX_POINTS, always including the last (a partial line is skipped). */
function metrics(file: string): Record<string, number>[] {
  if (!existsSync(file)) return [];
  const rows = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, number>];
      } catch {
        return [];
      }
    });
  const every = Math.ceil(rows.length / MAX_POINTS);
  return rows.filter((_, i) => i % every === 0 || i === rows.length - 1);
}

export function listRuns(root: string): { name: string; finished: boolean; modifiedMs: number }[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => existsSync(join(root, d, "recipe.json")))
    .map((d) => ({
      name: d,
      finished: existsSync(join(root, d, "run.json")),
      modifiedMs: statSync(join(root, d)).mtimeMs,
    }))
    .sort((a, b) => b.modifiedMs - a.modifiedMs);
}

/** The eval's pass@k at its k (the largest j of passAt), or null for a report without it (k 1, or older runs). */
function passAtK(passAt: Record<string, number> | undefined): { k: number; value: number } | null {
  const k = Math.max(...Object.keys(passAt ?? {}).map(Number));
  return Number.isFinite(k) ? { k, value: passAt![String(k)]! } : null;
}

export function runView(root: string, name: string): object | null {
  const dir = join(root, name);
  if (!/^[\w.-]+$/.test(name) || !existsSync(join(dir, "recipe.json"))) return null;
  const recipe = readJson(join(dir, "recipe.json")) as { stages: { name: string; type: string }[] };
  const stages = recipe.stages.map((s) => {
    const sd = join(dir, "stages", s.name);
    const ev = readJson(join(sd, "eval.json")) as {
      pass1: number;
      greedyAccuracy: number | null;
      formatRate: number;
      meanLength: number;
      report?: {
        examples?: unknown[];
        truncationRate?: number;
        behaviour?: Record<string, number> | null;
        passAt?: Record<string, number>;
      };
    } | null;
    return {
      name: s.name,
      type: s.type,
      done: readJson(join(sd, "done.json")),
      metrics: metrics(join(sd, "metrics.jsonl")),
      eval: ev && {
        pass1: ev.pass1,
        greedyAccuracy: ev.greedyAccuracy,
        formatRate: ev.formatRate,
        meanLength: ev.meanLength,
        truncationRate: ev.report?.truncationRate ?? null,
        passAtK: passAtK(ev.report?.passAt),
        behaviour: ev.report?.behaviour ?? null,
        examples: ev.report?.examples ?? [],
      },
    };
  });
  const ledger = existsSync(join(dir, "ledger.jsonl")) ? readLedger(dir) : null;
  return {
    name,
    finished: existsSync(join(dir, "run.json")),
    stages,
    bill: ledger ? makeBill(ledger.entries, ledger.skipped) : null,
    safety: readJson(join(dir, "safety.json")),
  };
}

export function mountDashboard(app: Hono, root: string): void {
  const require = createRequire(import.meta.url);
  const uplotJs = readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    uplotCss = readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
  app.get("/", (c) => c.redirect("/dashboard"));
  app.get("/dashboard", (c) => c.html(PAGE));
  app.get("/dashboard/uplot.js", (c) => c.body(uplotJs, 200, { "content-type": "text/javascript" }));
  app.get("/dashboard/uplot.css", (c) => c.body(uplotCss, 200, { "content-type": "text/css" }));
  mountWebgpuPage(app);
  app.get("/api/runs", (c) => c.json(listRuns(root)));
  app.get("/api/runs/:name", (c) => {
    const v = runView(root, c.req.param("name"));
    return v
      ? c.json(v)
      : c.json(
          {
            error: {
              message: `no run named ${c.req.param("name")} in ${root}`,
              type: "invalid_request_error",
              param: "name",
              code: "not_found",
            },
          },
          404,
        );
  });
}
