// The server driven by real clients: the unmodified `openai` npm client and the AI SDK's DeepSeek
// provider, streaming and not, reading reasoning and answer; 64 concurrent streams; malformed requests
// (each a 4xx OpenAI error, the server still serving); a client vanishing mid-stream frees its slot; the
// guard blocking with finish_reason content_filter. The model is a tiny base trained here in seconds.
import { tinyLlamaConfig } from "../model/testing.js";
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { ServerType } from "@hono/node-server";
import OpenAI from "openai";
import { createDeepSeek } from "@ai-sdk/deepseek";
import { generateText, streamText } from "ai";
import { repoRoot, tempDir } from "../common/testing.js";
import { forward, initModel } from "../model/transformer.js";
import { promptIds } from "../tokenizer/chat.js";
import { readRecipe } from "../pipeline/recipe.js";
import { runRecipe, stageDir } from "../pipeline/runner.js";
import { loadModelDir } from "../model/load.js";
import { Guard, withLabelTokens } from "../safety/guard.js";
import { decisionTokens } from "../safety/steer.js";
import { trainBpe } from "../tokenizer/bpe-train.js";
import { createApp } from "../serve/app.js";
import type { BatchEngine } from "../serve/engine.js";
import { listenLocal } from "../serve/listen.js";
import { splitReasoning } from "../serve/reasoning.js";

let server: ServerType,
  base = "",
  engine: BatchEngine,
  guarded: ServerType,
  guardedBase = "",
  steerRun = "";
const prompt = "Add: 12 + 34";

async function listen(app: { fetch: (r: Request) => Response | Promise<Response> }): Promise<[ServerType, string]> {
  const { server, origin } = await listenLocal(app);
  return [server, `${origin}/v1`];
}

before(async () => {
  const r = readRecipe(join(repoRoot, "recipes/tiny.json")),
    out = join(tempDir(), "run");
  steerRun = out;
  runRecipe(
    { ...r, stages: [{ ...r.stages[0]!, steps: 300 } as (typeof r.stages)[number]], eval: undefined },
    { outDir: out, resume: false, quiet: true, noForecast: true },
  );
  const t = loadModelDir(join(stageDir(out, "base"), "checkpoint"));
  const made = createApp({ model: t.model, tokenizer: t.tokenizer, modelName: "tiny", usdPerSecond: 1e-5, slots: 16 });
  engine = made.engine;
  [server, base] = await listen(made.app);
  const gt = withLabelTokens(trainBpe(["a b c"], 300));
  const gc = tinyLlamaConfig(gt.vocabSize, 32);
  [guarded, guardedBase] = await listen(
    createApp({
      model: t.model,
      tokenizer: t.tokenizer,
      modelName: "tiny",
      usdPerSecond: 1e-5,
      slots: 4,
      guard: new Guard(initModel(gc, 1), gt, 0),
    }).app,
  );
});
after(() => {
  server?.close();
  guarded?.close();
});

test("splitReasoning: prefixes of a completion split into reasoning and answer", () => {
  assert.deepEqual(splitReasoning("<think>a b"), { reasoning: "a b", content: "" });
  assert.deepEqual(splitReasoning("<think>a</think><answer>4"), { reasoning: "a", content: "4" });
  assert.deepEqual(splitReasoning("<think>a</think><answer>4</answer>"), { reasoning: "a", content: "4" });
  assert.deepEqual(splitReasoning("no tags"), { reasoning: "", content: "no tags" });
});

test("openai client: models, a completion with reasoning_content, and the same text streamed", async () => {
  const client = new OpenAI({ baseURL: base, apiKey: "none" });
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["tiny"],
  );
  const r = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: prompt }],
    max_tokens: 60,
    temperature: 0,
  });
  const msg = r.choices[0]!.message as (typeof r.choices)[0]["message"] & { reasoning_content: string };
  assert.ok(msg.reasoning_content.length > 0, "the tiny base writes <think>…</think>");
  assert.equal(typeof msg.content, "string");
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
  assert.ok((r.usage as unknown as { cost_usd: number }).cost_usd > 0);
  const stream = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: prompt }],
    max_tokens: 60,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let reasoning = "",
    content = "",
    finish = "",
    usage = 0;
  for await (const ch of stream) {
    const d = ch.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
    reasoning += d?.reasoning_content ?? "";
    content += d?.content ?? "";
    finish = ch.choices[0]?.finish_reason ?? finish;
    usage = ch.usage?.completion_tokens ?? usage;
  }
  assert.equal(reasoning, msg.reasoning_content);
  assert.equal(content, msg.content);
  assert.equal(finish, r.choices[0]!.finish_reason);
  assert.equal(usage, r.usage!.completion_tokens);
});

test("AI SDK DeepSeek provider: generateText and streamText read reasoning and answer", async () => {
  const deepseek = createDeepSeek({ baseURL: base, apiKey: "none" });
  const g = await generateText({ model: deepseek("tiny"), prompt, maxOutputTokens: 60, temperature: 0 });
  assert.ok(g.reasoningText && g.reasoningText.length > 0);
  const s = streamText({ model: deepseek("tiny"), prompt, maxOutputTokens: 60, temperature: 0 });
  let text = "";
  for await (const part of s.textStream) text += part;
  assert.equal(text, g.text);
  assert.equal(await s.reasoningText, g.reasoningText);
});

test("64 concurrent streaming requests complete without errors and are decoded in shared batches", async () => {
  const client = new OpenAI({ baseURL: base, apiKey: "none" });
  engine.stats.maxBatch = 0;
  const results = await Promise.all(
    Array.from({ length: 64 }, async (_, i) => {
      const s = await client.chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: `Add: ${i} + 7` }],
        max_tokens: 40,
        stream: true,
        seed: i,
      });
      let n = 0;
      for await (const ch of s) n += ch.choices[0]?.delta?.content ? 1 : 0;
      return n;
    }),
  );
  assert.equal(results.length, 64);
  assert.ok(engine.stats.maxBatch >= 2, `largest decode batch ${engine.stats.maxBatch}`);
  assert.equal(engine.active, 0);
});

test("a client that vanishes mid-stream frees its decode slot", async () => {
  const ac = new AbortController();
  const r = await fetch(`${base}/chat/completions`, {
    method: "POST",
    signal: ac.signal,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny",
      messages: [{ role: "user", content: prompt }],
      stream: true,
      max_tokens: 100,
      temperature: 1,
    }),
  });
  const reader = r.body!.getReader();
  await reader.read();
  ac.abort();
  for (let i = 0; i < 100 && (engine.active > 0 || engine.waiting > 0); i++)
    await new Promise((res) => setTimeout(res, 20));
  assert.equal(engine.active, 0);
  assert.equal(engine.waiting, 0);
});

test("malformed requests get 4xx OpenAI errors and the server keeps serving", async () => {
  const post = (body: string) =>
    fetch(`${base}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const ok = { model: "tiny", messages: [{ role: "user", content: prompt }] };
  const cases: [string, number, RegExp][] = [
    ["{not json", 400, /not valid JSON/],
    [JSON.stringify({ ...ok, messages: "hi" }), 400, /messages/],
    [JSON.stringify({ ...ok, temperature: "hot" }), 400, /temperature/],
    [JSON.stringify({ ...ok, model: "gpt-9" }), 404, /does not exist/],
    [JSON.stringify({ ...ok, max_tokens: -5 }), 400, /max_tokens/],
    [JSON.stringify({ ...ok, max_tokens: 100000 }), 400, /context/],
    [JSON.stringify({ ...ok, messages: [{ role: "user", content: "9".repeat(500) }] }), 400, /context/],
    [JSON.stringify({ ...ok, frobnicate: 1 }), 400, /frobnicate|Unrecognized/i],
    [JSON.stringify({ ...ok, messages: [{ role: "user", content: "x".repeat(2 << 20) }] }), 413, /1 MB/],
  ];
  for (const [body, status, re] of cases) {
    const r = await post(body);
    assert.equal(r.status, status, body.slice(0, 60));
    const j = (await r.json()) as { error: { message: string; type: string } };
    assert.match(j.error.message, re);
    assert.equal(typeof j.error.type, "string");
  }
  assert.equal((await post(JSON.stringify(ok))).status, 200);
});

test("guard steering: a deciding policy's refuse-or-not token is forced by margin + guard log-odds (the policy writes the rest); a task prompt is never steered", async () => {
  const t = loadModelDir(join(stageDir(steerRun, "base"), "checkpoint")),
    tok = t.tokenizer,
    { refuse, answer } = decisionTokens(tok);
  const gt = withLabelTokens(trainBpe(["a b c"], 300));
  const gc = tinyLlamaConfig(gt.vocabSize, 32);
  const guard = new Guard(initModel(gc, 1), gt, 1.01),
    opened: ServerType[] = []; // flags nothing: only the steering acts
  // a copy whose output rows for the two decision tokens outscore its favourite first token, so it is deciding (and
  // leans to answer)
  const rigged = loadModelDir(join(stageDir(steerRun, "base"), "checkpoint")),
    ids = promptIds(tok, "12+34");
  const head = rigged.model.params.get(
      rigged.model.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight",
    )!.data,
    C = rigged.model.config.hidden_size;
  const lg = forward(t.model, Int32Array.from([...ids, decisionTokens(tok).think]), 1, ids.length + 1).toArray(),
    V = lg.length / (ids.length + 1),
    last = lg.slice(-V);
  const top = last.indexOf(Math.max(...last));
  for (let c = 0; c < C; c++) {
    head[refuse * C + c] = 1.1 * head[top * C + c]!;
    head[answer * C + c] = 1.2 * head[top * C + c]!;
  }
  try {
    const ask = async (model: typeof t, threshold: number, maxTokens = 6) => {
      const steering = { guardWeight: 1, threshold, devBenignRate: 0, guardThreshold: 1.01 };
      const [srv, url] = await listen(
        createApp({
          model: model.model,
          tokenizer: tok,
          modelName: "tiny",
          usdPerSecond: 1e-5,
          slots: 2,
          guard,
          steering,
        }).app,
      );
      opened.push(srv);
      const client = new OpenAI({ baseURL: url, apiKey: "none" });
      const r = await client.chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "12+34" }],
        max_tokens: maxTokens,
        temperature: 0,
      });
      // forced tokens count as completion tokens, within max_tokens; the prompt is the prompt
      assert.equal(r.usage!.prompt_tokens, ids.length);
      assert.ok(
        r.usage!.completion_tokens <= maxTokens && r.usage!.total_tokens === ids.length + r.usage!.completion_tokens,
        JSON.stringify(r.usage),
      );
      assert.notEqual(
        r.choices[0]!.finish_reason,
        "content_filter",
        "steering never blocks; the policy writes the reply",
      );
      const s = await client.chat.completions.create({
        model: "tiny",
        messages: [{ role: "user", content: "12+34" }],
        max_tokens: maxTokens,
        temperature: 0,
        stream: true,
      });
      let streamed = "";
      for await (const ch of s)
        streamed += (ch.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? "";
      const reasoning = (r.choices[0]!.message as unknown as { reasoning_content: string }).reasoning_content;
      assert.equal(streamed, reasoning, "the stream carries the forced token too");
      return reasoning;
    };
    const first = tok.decode([refuse]);
    assert.ok(
      (await ask(rigged, -1e9)).startsWith(first),
      "steered to refuse: the reasoning opens with the refusal's first token",
    );
    assert.ok(
      (await ask(rigged, 1e9)).startsWith(tok.decode([answer])),
      "steered to answer: the policy's own choice stands",
    );
    assert.ok(
      !(await ask(t, -1e9)).startsWith(first),
      "the task model is not deciding: no forced refusal on its arithmetic",
    );
    assert.ok(
      !(await ask(rigged, -1e9, 2)).startsWith(first),
      "max_tokens 2 leaves no room to force the decision and reply: not steered",
    );
    // a prompt longer than the context gets the usual context error, not a failed steering pass
    const [srv, url] = await listen(
      createApp({
        model: rigged.model,
        tokenizer: tok,
        modelName: "tiny",
        usdPerSecond: 1e-5,
        slots: 2,
        guard,
        steering: { guardWeight: 1, threshold: 0, devBenignRate: 0, guardThreshold: 1.01 },
      }).app,
    );
    opened.push(srv);
    const long = await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "1+2 ".repeat(400) }] }),
    });
    assert.equal(long.status, 400);
    assert.equal(((await long.json()) as { error: { code: string } }).error.code, "context_length_exceeded");
  } finally {
    for (const srv of opened) srv.close();
  }
});

test("guard: a blocked prompt returns a refusal with finish_reason content_filter, streamed or not", async () => {
  const client = new OpenAI({ baseURL: guardedBase, apiKey: "none" });
  const r = await client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: prompt }] });
  assert.equal(r.choices[0]!.finish_reason, "content_filter");
  assert.match(r.choices[0]!.message.content!, /cannot help/);
  const s = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: prompt }],
    stream: true,
  });
  let finish = "";
  for await (const ch of s) finish = ch.choices[0]?.finish_reason ?? finish;
  assert.equal(finish, "content_filter");
});
