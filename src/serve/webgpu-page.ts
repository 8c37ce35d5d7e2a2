// /webgpu: a page that trains the tiny recipe's pretraining stage in the browser tab with the webgpu kernels
// and draws the loss curve. The engine is bundled for the browser by esbuild on first request: Node's built-in
// modules become stubs (nothing on the browser's path calls them) and "webgpu" becomes navigator.gpu.
// SharedArrayBuffer (the engine waits on its GPU worker) needs cross-origin isolation: every reply sets it.
import { builtinModules } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hono } from "hono";
import { repoRoot } from "../common/files.js";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Threads in a browser: a worker blocked in Atomics.wait cannot start a nested worker, so the page starts both
 * and joins them with a MessageChannel; the engine's "new Worker" is its end of that channel.
 */
const WORKER_THREADS = `
export class Worker {
  constructor() {
    this.p = globalThis.__frugalGpuPort;
    if (!this.p) throw new Error("no GPU port: the page starts the GPU worker and passes its port");
  }
  postMessage(m, t) { this.p.postMessage(m, t); }
  unref() {}
  terminate() { return Promise.resolve(0); }
}
export const parentPort = { on(_, f) {
  globalThis.addEventListener("message", (e) => {
    if (e.data && e.data.gpuPort) e.data.gpuPort.onmessage = (m) => f(m.data);
  });
} };
export const isMainThread = false;`;
const WEBGPU = `export function create() { return navigator.gpu; }\nexport const globals = {};`;
/** Any other built-in: each of its real export names is a stub whose properties are stubs and whose calls return
 * "" (paths, flags), so that importing works and top-level path arithmetic runs; nothing on the browser's path
 * calls them for real. */
async function stubOf(name: string): Promise<string> {
  const names = Object.keys(await import(name)).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== "default");
  return `const s = new Proxy(function () { return ""; }, { get: () => s, apply: () => "" });
export default s;
export { ${names.map((k) => `s as ${k}`).join(", ")} };`;
}
/** Shipped data files (read at import by some modules): fetched synchronously from /src/…json beside the page. */
const SHIPPED = `export function readShippedJson(url, schema) {
  const x = new XMLHttpRequest();
  x.open("GET", url.href, false);
  x.send();
  const p = schema.safeParse(JSON.parse(x.responseText));
  if (!p.success) throw new Error(url.href + " does not match its schema");
  return p.data;
}`;
const PROCESS = `globalThis.process ??= { env: {}, argv: [], platform: "browser", versions: {},
  stderr: { write: (s) => console.warn(s) }, stdout: { write: (s) => console.log(s) },
  cwd: () => "/", cpuUsage: () => ({ user: 0, system: 0 }), memoryUsage: () => ({ rss: 0, heapUsed: 0 }),
  once() {} };
globalThis.Buffer ??= { from: (a) => Uint8Array.from(a), alloc: (n) => new Uint8Array(n), isBuffer: () => false };`;

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** The two browser bundles: the engine (training) thread and the GPU thread. Built once per process. */
let bundles: Promise<{ engine: string; worker: string }> | null = null;
export function browserBundles(): Promise<{ engine: string; worker: string }> {
  bundles ??= (async () => {
    const esbuild = await import("esbuild");
    const build = async (entry: string) => {
      const r = await esbuild.build({
        entryPoints: [join(here, entry)],
        bundle: true,
        write: false,
        format: "esm",
        platform: "browser",
        target: "chrome120",
        banner: { js: PROCESS },
        logLevel: "silent",
        plugins: [
          {
            name: "node-in-the-browser",
            setup(b) {
              b.onResolve({ filter: /^[\w:/-]+$/ }, (a) =>
                builtins.has(a.path) || a.path === "webgpu" ? { path: a.path, namespace: "shim" } : undefined,
              );
              b.onLoad({ filter: /common[\\/]shipped\.js$/ }, () => ({ contents: SHIPPED, loader: "js" }));
              b.onLoad({ filter: /.*/, namespace: "shim" }, async (a) => ({
                contents: /worker_threads$/.test(a.path)
                  ? WORKER_THREADS
                  : a.path === "webgpu"
                    ? WEBGPU
                    : await stubOf(a.path),
                loader: "js",
              }));
            },
          },
        ],
      });
      return r.outputFiles[0]!.text;
    };
    return { engine: await build("../pipeline/browser-worker.js"), worker: await build("../engine/webgpu/worker.js") };
  })();
  return bundles;
}

const ISOLATED = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
};

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>frugal · WebGPU</title>
<link rel="stylesheet" href="/dashboard/uplot.css">
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}code{background:#eee;padding:0 .3em}</style>
</head><body>
<h1>frugal on WebGPU, in this tab</h1>
<p>The tiny recipe's pretraining stage (<code>recipes/tiny.json</code>), trained here with the same engine as
<code>frugal run</code>: its kernels in WGSL on this browser's GPU. Add <code>?steps=N</code> to train fewer steps.</p>
<p id="kernels">starting…</p><p id="status"></p><div id="chart"></div>
<script src="/dashboard/uplot.js"></script>
<script type="module">
const steps = Number(new URLSearchParams(location.search).get("steps") ?? 500);
const state = (window.frugal = { kernels: null, losses: [], wallMs: [], done: false, error: null });
const xs = [], plot = new uPlot({ width: 720, height: 320, title: "training loss",
  scales: { x: { time: false } }, series: [{ label: "step" }, { label: "loss", stroke: "#c0392b", width: 2 }] },
  [xs, state.losses], document.getElementById("chart"));
const say = (id, t) => (document.getElementById(id).textContent = t);
if (!crossOriginIsolated) say("status", "this page needs cross-origin isolation (serve it with frugal dashboard)");
const recipe = await (await fetch("/webgpu/recipe.json")).json();
const w = new Worker("/webgpu/engine.js", { type: "module" }),
  gpu = new Worker("/webgpu/worker.js", { type: "module" }),
  channel = new MessageChannel();
gpu.postMessage({ gpuPort: channel.port2 }, [channel.port2]);
w.onmessage = ({ data: m }) => {
  if (m.type === "kernels") { state.kernels = m; say("kernels", "kernels: " + m.description); }
  if (m.type === "step") {
    xs.push(m.step); state.losses.push(m.loss); state.wallMs.push(m.wallMs); plot.setData([xs, state.losses]);
    say("status", "step " + m.step + " of " + m.total + ": loss " + m.loss.toFixed(4) + ", " +
      m.wallMs.toFixed(0) + " ms");
  }
  if (m.type === "done") { state.done = true; say("status", document.getElementById("status").textContent +
    " — done (" + m.dispatches + " GPU dispatches)"); }
  if (m.type === "error") { state.error = m.message; state.done = true; say("status", "error: " + m.message); }
};
w.onerror = (e) => { state.error = e.message + " (" + e.filename + ":" + e.lineno + ")"; state.done = true;
  say("status", "error: " + state.error); };
w.postMessage({ recipe, steps, gpuPort: channel.port1 }, [channel.port1]);
</script></body></html>`;

/** Mounts /webgpu (the page), its two scripts and the recipe it trains. uPlot comes from the dashboard's routes. */
export function mountWebgpuPage(app: Hono): void {
  const js = (text: string) => new Response(text, { headers: { "content-type": "text/javascript", ...ISOLATED } });
  app.get("/webgpu", (c) => c.html(PAGE, 200, ISOLATED));
  app.get("/webgpu/engine.js", async () => js((await browserBundles()).engine));
  app.get("/webgpu/worker.js", async () => js((await browserBundles()).worker));
  // shipped data files, which the browser bundle reads by their path relative to the sources
  app.get("/src/*", (c) => {
    const rel = c.req.path.slice(1);
    if (!/^src\/[\w/-]+\.json$/.test(rel)) return c.notFound();
    return c.body(readFileSync(join(repoRoot, rel), "utf8"), 200, { "content-type": "application/json", ...ISOLATED });
  });
  app.get("/webgpu/recipe.json", (c) =>
    c.body(readFileSync(join(repoRoot, "recipes/tiny.json"), "utf8"), 200, {
      "content-type": "application/json",
      ...ISOLATED,
    }),
  );
}
