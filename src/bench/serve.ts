// `frugal bench serve`: the HTTP server in-process on a free port; the same requests sent one at a time
// and by 16 clients at once (throughput ratio = what continuous batching buys), then 64 concurrent streaming
// requests counted for errors. Tokens are the server's own usage counts. Default model: the reference
// config, freshly initialised, with the char tokenizer.
import { referenceConfig } from "../model/config.js";
import { initModel, type Model } from "../model/transformer.js";
import { createApp } from "../serve/app.js";
import { listenLocal } from "../serve/listen.js";
import { TASK_CHARS } from "../tasks/index.js";
import { CharTokenizer, type Tokenizer } from "../tokenizer/tokenizer.js";

export interface ServeBench {
  sequentialTokensPerSec: number;
  concurrent16TokensPerSec: number;
  speedup: number;
  streams64: number;
  streamErrors: number;
  maxBatch: number;
}

export async function benchServe(
  m?: { model: Model; tokenizer: Tokenizer },
  requests = 48,
  maxTokens = 96,
): Promise<ServeBench> {
  const tokenizer = m?.tokenizer ?? CharTokenizer.fromChars(TASK_CHARS);
  const model = m?.model ?? initModel({ ...referenceConfig, vocab_size: tokenizer.vocabSize }, 1);
  const { app, engine } = createApp({ model, tokenizer, modelName: "bench", usdPerSecond: 0, slots: 16 });
  const { server, origin } = await listenLocal(app),
    url = `${origin}/v1/chat/completions`;
  const body = (i: number, stream = false) =>
    JSON.stringify({
      model: "bench",
      messages: [{ role: "user", content: `Add: ${1000 + i} + ${77 * i}` }],
      max_tokens: maxTokens,
      temperature: 1,
      seed: i,
      stream,
    });
  const one = async (i: number) => {
    const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body(i) });
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    return ((await r.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
  };
  try {
    await one(-1); // warm-up
    let t0 = performance.now(),
      seqTokens = 0;
    for (let i = 0; i < requests; i++) seqTokens += await one(i);
    const sequential = seqTokens / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    // 16 clients, each sending its next request as soon as the last returns (16 always in flight)
    let parTokens = 0,
      next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < requests) {
          const n = await one(next++);
          parTokens += n;
        }
      }),
    );
    const concurrent = parTokens / ((performance.now() - t0) / 1000);
    const streams = await Promise.allSettled(
      Array.from({ length: 64 }, async (_, i) => {
        const r = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: body(i, true),
        });
        const text = await r.text();
        if (!r.ok || !text.includes("data: [DONE]") || text.includes('"error"')) throw new Error(`stream ${i} failed`);
      }),
    );
    return {
      sequentialTokensPerSec: sequential,
      concurrent16TokensPerSec: concurrent,
      speedup: concurrent / sequential,
      streams64: streams.length,
      streamErrors: streams.filter((s) => s.status === "rejected").length,
      maxBatch: engine.stats.maxBatch,
    };
  } finally {
    server.close();
  }
}
