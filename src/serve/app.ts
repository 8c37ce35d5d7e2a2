// The OpenAI/DeepSeek-compatible HTTP API (Hono): GET /v1/models, POST /v1/chat/completions with and
// without SSE streaming, reasoning in `reasoning_content` and the answer in `content` (DeepSeek's
// convention), usage with token counts and the request's cost from the price table, OpenAI error
// objects, a 1 MB body limit, and the guard on the prompt and on the reply while it streams.
// Single-turn: the last user message is the prompt (system and earlier turns are not modelled).
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { FrugalError } from "../common/errors.js";
import { defaultSampleOptions } from "../model/sampler.js";
import { refusalCompletion } from "../safety/policy.js";
import type { SafetyJudge } from "../safety/guard.js";
import { Gate } from "../safety/gate.js";
import type { Steering } from "../safety/steer.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { endId } from "../tokenizer/chat.js";
import type { Model } from "../model/transformer.js";
import { BatchEngine } from "./engine.js";
import { splitReasoning } from "./reasoning.js";

export interface ServeOptions {
  model: Model;
  tokenizer: Tokenizer;
  modelName: string;
  guard?: SafetyJudge;
  usdPerSecond: number;
  slots: number;
  /** with a guard: steer the policy's refuse-or-not token by it (steer.ts) instead of blocking what the guard flags */
  steering?: Steering | null;
}

const Message = z
  .object({
    role: z.enum(["system", "user", "assistant", "developer", "tool"]),
    content: z.union([
      z.string(),
      z.array(z.object({ type: z.string(), text: z.string().optional() }).passthrough()),
      z.null(),
    ]),
  })
  .passthrough();
// fields OpenAI clients send that a frugal model has no use for are accepted and ignored; others are 400s
const Request = z
  .object({
    model: z.string(),
    messages: z.array(Message).min(1),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    seed: z.number().int().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4), z.null()]).optional(),
    n: z.literal(1).optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullable().optional(),
    user: z.string().optional(),
    frequency_penalty: z.number().optional(),
    presence_penalty: z.number().optional(),
    logprobs: z.boolean().optional(),
    top_logprobs: z.number().optional(),
    response_format: z.object({ type: z.string() }).passthrough().optional(),
  })
  .strict();
type Req = z.infer<typeof Request>;

export function openAiError(
  c: Context,
  status: 400 | 404 | 413 | 500 | 503,
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
) {
  return c.json({ error: { message, type, param, code } }, status);
}

function promptText(req: Req): string {
  const last = [...req.messages].reverse().find((m) => m.role === "user");
  if (!last) throw new FrugalError("REQUEST", "messages has no user message");
  if (last.content === null) return "";
  return typeof last.content === "string" ? last.content : last.content.map((p) => p.text ?? "").join("");
}

interface Prepared {
  req: Req;
  text: string;
  ids: number[];
  seed: number;
  opts: typeof defaultSampleOptions;
  head: { id: string; created: number; model: string };
  usage(completion: number, computeS: number): object;
  /** the policy's refusal when the guard blocked the prompt */
  refusal: { reasoning: string; content: string } | null;
  /** text of the reasoning's first tokens when steering forced the decision (already in ids, not generated) */
  forced: string;
}

export function createApp(o: ServeOptions): { app: Hono; engine: BatchEngine } {
  const app = new Hono(),
    engine = new BatchEngine(o.model, o.slots),
    created = Math.floor(Date.now() / 1000);
  const gate = new Gate(o.model, o.tokenizer, o.guard, o.steering ?? null);
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: 1 << 20,
      onError: (c) => openAiError(c, 413, "request body over 1 MB", "invalid_request_error", null, "body_too_large"),
    }),
  );
  app.get("/v1/models", (c) =>
    c.json({ object: "list", data: [{ id: o.modelName, object: "model", created, owned_by: "frugal" }] }),
  );
  app.onError((e, c) =>
    e instanceof FrugalError && e.code !== "INTERNAL"
      ? openAiError(c, 400, e.message, "invalid_request_error")
      : openAiError(c, 500, `internal: ${e.message}`, "server_error"),
  );
  app.notFound((c) =>
    openAiError(
      c,
      404,
      `no route ${c.req.method} ${c.req.path}; this server has GET /v1/models and POST /v1/chat/completions`,
      "invalid_request_error",
      null,
      "not_found",
    ),
  );
  app.post("/v1/chat/completions", async (c) => {
    const p = await prepare(c, o, gate);
    if (p instanceof Response) return p;
    return p.req.stream ? streamReply(c, p, engine, o) : reply(c, p, engine, o);
  });
  return { app, engine };
}

/** Parses and checks a request; an OpenAI error response when it cannot be served. */
async function prepare(c: Context, o: ServeOptions, gate: Gate): Promise<Prepared | Response> {
  const tok = o.tokenizer,
    ctx = o.model.config.max_position_embeddings;
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    return openAiError(c, 400, "the body is not valid JSON", "invalid_request_error", null, "invalid_json");
  }
  const p = Request.safeParse(raw);
  if (!p.success) {
    const i = p.error.issues[0]!;
    return openAiError(
      c,
      400,
      `${i.path.join(".") || "body"}: ${i.message}`,
      "invalid_request_error",
      i.path.join(".") || null,
      i.code === "unrecognized_keys" ? "unknown_parameter" : "invalid_value",
    );
  }
  const req = p.data;
  if (req.model !== o.modelName)
    return openAiError(
      c,
      404,
      `the model \`${req.model}\` does not exist; this server serves \`${o.modelName}\``,
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  // forced decision tokens (steering) are part of the completion: counted there and within max_tokens
  const text = promptText(req),
    wanted = req.max_completion_tokens ?? req.max_tokens,
    { ids, forced, forcedN, block } = gate.prompt(text, wanted === undefined || wanted > 2);
  const promptLen = ids.length - forcedN,
    room = ctx - promptLen,
    maxTokens = wanted ?? room;
  if (room < 1 || maxTokens > room) {
    return openAiError(
      c,
      400,
      `the prompt is ${promptLen} tokens and max_tokens ${maxTokens}; this model's context is ${ctx} tokens`,
      "invalid_request_error",
      "messages",
      "context_length_exceeded",
    );
  }
  const stops = req.stop == null ? [] : typeof req.stop === "string" ? [req.stop] : req.stop;
  const opts = {
    ...defaultSampleOptions,
    maxNewTokens: maxTokens - forcedN,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    stopTokens: [endId(tok)],
    stopStrings: stops,
  };
  const usage = (completion: number, computeS: number) => ({
    prompt_tokens: promptLen,
    completion_tokens: completion + forcedN,
    total_tokens: promptLen + completion + forcedN,
    cost_usd: computeS * o.usdPerSecond,
    compute_seconds: computeS,
  });
  const blocked = block ? o.guard?.classify([text], "prompt")[0] : undefined;
  return {
    req,
    text,
    ids,
    opts,
    usage,
    seed: req.seed ?? Math.floor(Math.random() * 2 ** 31),
    head: { id: `chatcmpl-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000), model: o.modelName },
    refusal: blocked?.unsafe ? splitReasoning(refusalCompletion(blocked.hazard!)) : null,
    forced,
  };
}

async function reply(c: Context, p: Prepared, engine: BatchEngine, o: ServeOptions): Promise<Response> {
  const message = (parts: { reasoning: string; content: string }) => ({
    role: "assistant",
    content: parts.content,
    reasoning_content: parts.reasoning,
  });
  if (p.refusal)
    return c.json({
      ...p.head,
      object: "chat.completion",
      choices: [{ index: 0, message: message(p.refusal), finish_reason: "content_filter" }],
      usage: p.usage(0, 0),
    });
  const r = await new Promise<{ text: string; tokens: number; finishReason: string; computeS: number }>(
    (resolve, reject) => {
      engine.submit({
        prompt: p.ids,
        opts: p.opts,
        seed: p.seed,
        decode: (x) => p.forced + o.tokenizer.decode(x),
        onDone: resolve,
        onError: reject,
      });
    },
  );
  const blocked = o.guard?.classify([r.text], "completion")[0]!.unsafe;
  const parts = blocked ? { reasoning: "", content: "" } : splitReasoning(r.text);
  return c.json({
    ...p.head,
    object: "chat.completion",
    choices: [{ index: 0, message: message(parts), finish_reason: blocked ? "content_filter" : r.finishReason }],
    usage: p.usage(r.tokens, r.computeS),
  });
}

/** SSE: role chunk, reasoning_content / content deltas as the text grows, the finish chunk, usage, [DONE]. */
function streamReply(c: Context, p: Prepared, engine: BatchEngine, o: ServeOptions): Response {
  return streamSSE(c, async (stream) => {
    const chunk = (delta: object, finish: string | null) =>
      stream.writeSSE({
        data: JSON.stringify({
          ...p.head,
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta, finish_reason: finish }],
        }),
      });
    const usageChunk = (tokens: number, computeS: number) =>
      p.req.stream_options?.include_usage
        ? stream.writeSSE({
            data: JSON.stringify({
              ...p.head,
              object: "chat.completion.chunk",
              choices: [],
              usage: p.usage(tokens, computeS),
            }),
          })
        : Promise.resolve();
    await chunk({ role: "assistant", content: "" }, null);
    if (p.refusal) {
      await chunk({ reasoning_content: p.refusal.reasoning }, null);
      await chunk({ content: p.refusal.content }, "content_filter");
      await usageChunk(0, 0);
      await stream.writeSSE({ data: "[DONE]" });
      return;
    }
    await new Promise<void>((resolve) => {
      let sent = { reasoning: "", content: "" },
        writes = Promise.resolve(),
        lastCheck = 0,
        finished = false;
      const send = (text: string) => {
        const now = splitReasoning(text),
          d: Record<string, string> = {};
        if (now.reasoning.length > sent.reasoning.length)
          d.reasoning_content = now.reasoning.slice(sent.reasoning.length);
        if (now.content.length > sent.content.length) d.content = now.content.slice(sent.content.length);
        sent = now;
        if (Object.keys(d).length) writes = writes.then(() => chunk(d, null));
      };
      const end = (finish: string, tokens: number, computeS: number) => {
        if (finished) return;
        finished = true;
        writes = writes
          .then(() => chunk({}, finish))
          .then(() => usageChunk(tokens, computeS))
          .then(() => stream.writeSSE({ data: "[DONE]" }))
          .catch(() => {})
          .finally(resolve);
      };
      const unsafe = (text: string) => !!o.guard?.classify([text], "completion")[0]!.unsafe;
      const handle = engine.submit({
        prompt: p.ids,
        opts: p.opts,
        seed: p.seed,
        decode: (x) => p.forced + o.tokenizer.decode(x),
        onText: (t, n) => {
          if (o.guard && n - lastCheck >= 16) {
            lastCheck = n;
            if (unsafe(t)) {
              handle.cancel();
              return end("content_filter", n, 0);
            }
          }
          send(t);
        },
        onDone: (r) => {
          if (unsafe(r.text)) return end("content_filter", r.tokens, r.computeS);
          send(r.text);
          end(r.finishReason, r.tokens, r.computeS);
        },
        onError: (e) => {
          writes = writes.then(() =>
            stream.writeSSE({
              data: JSON.stringify({ error: { message: e.message, type: "server_error", param: null, code: null } }),
            }),
          );
          end("error", 0, 0);
        },
      });
      stream.onAbort(() => {
        handle.cancel();
        finished = true;
        resolve();
      });
    });
  });
}
