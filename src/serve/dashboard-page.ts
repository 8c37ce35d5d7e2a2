// The dashboard's one HTML page (vanilla JS + uPlot): run list, per-stage metric curves, the bill, the eval
// table, sampled completions, the safety report. Polls /api/runs/<name> every 3 s. Each chart records its
// point count in window.__charts so the browser test can check that data was drawn.
export const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>frugal runs</title>
<link rel="stylesheet" href="/dashboard/uplot.css">
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 0; display: flex; color: #222; }
 nav { width: 220px; border-right: 1px solid #ddd; padding: 12px; min-height: 100vh; }
 nav a { display: block; padding: 4px 6px; color: #222; text-decoration: none; border-radius: 4px; }
 nav a.on { background: #e8eefc; }
 main { padding: 12px 20px; flex: 1; max-width: 1100px; }
 .charts { display: flex; flex-wrap: wrap; gap: 12px; }
 .chart { border: 1px solid #eee; padding: 4px; }
 table { border-collapse: collapse; margin: 8px 0 16px; }
 td, th { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: right; }
 td:first-child, th:first-child { text-align: left; }
 pre { white-space: pre-wrap; margin: 0; font-size: 12px; max-width: 640px; }
 .muted { color: #888; }
</style></head>
<body><nav><b>runs</b><div id="runs" class="muted">loading…</div></nav><main id="main"><p class="muted">choose a run</p></main>
<script src="/dashboard/uplot.js"></script>
<script>
const CURVES = [["reward", "reward"], ["accuracy", "accuracy"], ["lenMean", "response length (tokens)"], ["candidates", "candidates tried"], ["backtracks", "backtracks"], ["verifications", "checks"], ["solvedWithBacktrack", "solved with a backtrack"], ["miscalculated", "steps miscalculated"], ["falseYes", "“yes” that is false"], ["truncated", "truncated"], ["kl", "KL to reference"], ["clipFrac", "clip fraction"], ["loss", "loss"]];
let current = null, timer = null;
window.__charts = [];
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const pct = (x) => x == null ? "—" : (100 * x).toFixed(1) + "%";
async function loadRuns() {
  const runs = await (await fetch("/api/runs")).json();
  document.getElementById("runs").innerHTML = runs.length ? runs.map((r) => '<a href="#' + esc(r.name) + '" class="' + (r.name === current ? "on" : "") + '">' + esc(r.name) + (r.finished ? "" : ' <span class="muted">(running)</span>') + "</a>").join("") : "no runs yet";
  if (!current && runs.length) show(location.hash.slice(1) || runs[0].name);
}
function chart(el, title, xs, ys) {
  const u = new uPlot({ title, width: 330, height: 200, scales: { x: { time: false } }, series: [{ label: "step" }, { label: title, stroke: "#3b6fd8", width: 1.5 }] }, [xs, ys], el);
  window.__charts.push({ title, points: xs.length, el: u.root });
}
function render(v) {
  window.__charts = [];
  const m = document.getElementById("main");
  let h = "<h2>" + esc(v.name) + (v.finished ? "" : ' <span class="muted">(in progress)</span>') + "</h2>";
  const evals = v.stages.filter((s) => s.eval);
  if (evals.length) {
    h += "<h3>evaluation</h3><table><tr><th>stage</th><th>pass@1</th><th>pass@k</th><th>greedy</th><th>format</th><th>mean len</th><th>truncated</th><th>candidates</th><th>backtracks</th><th>checks</th><th>solved with backtrack</th><th>steps miscalculated</th></tr>" +
      evals.map((s) => { const b = s.eval.behaviour, f = (k, d) => (b && b[k] != null ? b[k].toFixed(d) : "—"); return "<tr><td>" + esc(s.name) + "</td><td>" + pct(s.eval.pass1) + "</td><td>" + (s.eval.passAtK ? pct(s.eval.passAtK.value) + " (k " + s.eval.passAtK.k + ")" : "—") + "</td><td>" + pct(s.eval.greedyAccuracy) + "</td><td>" + pct(s.eval.formatRate) + "</td><td>" + s.eval.meanLength.toFixed(1) + "</td><td>" + pct(s.eval.truncationRate) + "</td><td>" + f("candidates", 1) + "</td><td>" + f("backtracks", 2) + "</td><td>" + f("verifications", 2) + "</td><td>" + (b ? pct(b.solvedWithBacktrack) : "—") + "</td><td>" + (b && b.miscalculated != null ? pct(b.miscalculated) : "—") + "</td></tr>"; }).join("") + "</table>";
  }
  if (v.safety) {
    const s = v.safety;
    const ci = (k) => (s.intervals && s.intervals[k] ? ' <span class="muted">(95% CI ' + (100 * s.intervals[k][0]).toFixed(1) + "–" + (100 * s.intervals[k][1]).toFixed(1) + "%)</span>" : "");
    const row = (name, r, cap, cis) => "<tr><td>" + [esc(name), pct(r.harmfulRefusalRate) + (cis ? ci("harmfulRefusalRate") : ""), pct(r.benignRefusalRate) + (cis ? ci("benignRefusalRate") : ""), pct(r.lookalikeRefusalRate), pct(r.jailbreakDefenseRate), cap].join("</td><td>") + "</td></tr>";
    h += "<h3>safety</h3><table><tr><th></th><th>harmful refused</th><th>benign refused</th><th>look-alikes refused</th><th>jailbreaks defended</th><th>capability delta</th></tr>" +
      row("safe model", s, s.capabilityDelta == null ? "—" : (100 * s.capabilityDelta).toFixed(1) + " pts", true) +
      (s.withGuard ? row("with its guard (" + s.withGuard.rule + ")", s.withGuard, "", false) : "") + "</table>" +
      (s.intervals ? '<p class="muted">intervals: cluster bootstrap over ' + s.intervals.units.harmful + " harmful and " + s.intervals.units.benign + " benign independent requests</p>" : "");
  }
  if (v.bill) {
    h += "<h3>bill</h3><table><tr><th>stage</th><th>device-hours</th><th>wall</th><th>$</th></tr>" +
      v.bill.stages.map((b) => "<tr><td>" + esc(b.name) + "</td><td>" + b.deviceHours.toFixed(4) + "</td><td>" + b.wallS.toFixed(1) + " s</td><td>" + b.costUsd.toFixed(5) + "</td></tr>").join("") +
      "<tr><th>total</th><th>" + v.bill.totalDeviceHours.toFixed(4) + "</th><th>" + v.bill.totalWallS.toFixed(1) + " s</th><th>" + v.bill.totalUsd.toFixed(5) + "</th></tr></table>";
  }
  h += v.stages.map((s, i) => '<h3>' + esc(s.name) + ' <span class="muted">' + esc(s.type) + " · " + s.metrics.length + " points" + (s.done ? "" : " · running or not started") + '</span></h3><div class="charts" id="c' + i + '"></div>').join("");
  const ex = evals.flatMap((s) => s.eval.examples.map((e) => ({ stage: s.name, ...e })));
  if (ex.length) h += "<h3>sampled completions</h3><table><tr><th>stage</th><th>prompt</th><th>completion</th><th>correct</th></tr>" + ex.map((e) => "<tr><td>" + esc(e.stage) + "</td><td><pre>" + esc(e.prompt) + "</pre></td><td><pre>" + esc(e.completion) + "</pre></td><td>" + (e.correct ? "✓" : "✗") + "</td></tr>").join("") + "</table>";
  m.innerHTML = h;
  v.stages.forEach((s, i) => {
    const el = document.getElementById("c" + i), xs = s.metrics.map((r) => r.step);
    for (const [k, title] of CURVES) if (s.metrics.some((r) => typeof r[k] === "number")) chart(el, title, xs, s.metrics.map((r) => r[k] ?? null));
  });
}
async function show(name) {
  current = name; loadRuns();
  const r = await fetch("/api/runs/" + encodeURIComponent(name));
  if (r.ok) render(await r.json());
  clearTimeout(timer);
  timer = setTimeout(() => show(current), 3000);
}
window.addEventListener("hashchange", () => show(location.hash.slice(1)));
loadRuns();
</script></body></html>`;
