// `frugal bench sample --vs-llama-cpp`: the reference config exported to GGUF and decoded at batch 1 by
// frugal and by llama.cpp (node-llama-cpp, CPU build, llamaThreads()) from the same prompt tokens, same run.
// node-llama-cpp is an optional (dev) dependency: loaded on demand with a clear error when missing.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { FrugalError, internal } from "../common/errors.js";
import { tempDir } from "../common/files.js";
import { referenceConfig } from "../model/config.js";
import { generate } from "../model/sampler.js";
import { initModel, type Model } from "../model/transformer.js";
import { exportGguf } from "../serve/gguf.js";
import { TASK_CHARS } from "../tasks/index.js";
import { promptIds } from "../tokenizer/chat.js";
import { CharTokenizer, type Tokenizer } from "../tokenizer/tokenizer.js";

type LlamaModule = typeof import("node-llama-cpp");

/**
 * llama.cpp threads (FRUGAL_LLAMA_THREADS, default 1). Measured here: 1 thread 1,180 tokens/s, 2 threads 67 —
 * its busy-waiting pool fights node and frugal's own OpenMP threads for the 2 cores.
 */
export const llamaThreads = () => Number(process.env.FRUGAL_LLAMA_THREADS ?? 1);

export async function loadLlamaCpp(): Promise<LlamaModule> {
  try {
    return await import("node-llama-cpp");
  } catch (e) {
    throw new FrugalError(
      "DEPENDENCY",
      `node-llama-cpp is not installed (${(e as Error).message.split("\n")[0]}); install it with \`npm i -E node-llama-cpp@3.21.1\``,
    );
  }
}

/** llama.cpp's next-token distribution after each prefix of `ids` (dense, vocabulary-long rows), temperature 1. */
export async function llamaNextProbs(file: string, ids: number[], V: number): Promise<Float64Array[]> {
  const { getLlama } = await loadLlamaCpp();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({
    contextSize: Math.min(model.trainContextSize, 4096),
    threads: llamaThreads(),
  });
  try {
    const options = { temperature: 1, topK: 0, topP: 1, minP: 0 };
    const out = await ctx
      .getSequence()
      .controlledEvaluate(ids.map((t) => [t, { generateNext: { probabilities: true, options } }] as never));
    return out.map((o, i) => {
      const probs = (o as { next?: { probabilities?: Map<number, number> } } | undefined)?.next?.probabilities;
      if (!probs) throw internal(`llama.cpp returned no probabilities at position ${i}`);
      const row = new Float64Array(V);
      for (const [t, p] of probs) row[t] = p;
      return row;
    });
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

/** Greedy tokens from llama.cpp for a GGUF file, starting from the given prompt ids. */
export async function llamaGreedy(
  file: string,
  prompt: number[],
  n: number,
  stop?: number,
  threads = llamaThreads(),
): Promise<{ tokens: number[]; seconds: number }> {
  const { getLlama } = await loadLlamaCpp();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({
    contextSize: Math.min(model.trainContextSize, 4096),
    threads,
  });
  try {
    const seq = ctx.getSequence(),
      tokens: number[] = [],
      t0 = performance.now();
    for await (const tk of seq.evaluate(prompt as never, { temperature: 0 })) {
      if ((tk as number) === stop || tokens.length >= n) break;
      tokens.push(tk as number);
    }
    return { tokens, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

export async function benchVsLlamaCpp(
  newTokens = 200,
): Promise<{ frugalTokensPerSec: number; llamaCppTokensPerSec: number; newTokens: number; sameTokens: boolean }> {
  const tok: Tokenizer = CharTokenizer.fromChars(TASK_CHARS);
  const model: Model = initModel(
    {
      ...referenceConfig,
      vocab_size: tok.vocabSize,
      max_position_embeddings: Math.max(referenceConfig.max_position_embeddings, newTokens + 32),
    },
    1,
  );
  const dir = tempDir("frugal-gguf-"),
    file = join(dir, "reference.gguf");
  try {
    exportGguf(model, tok, file, "reference");
    const prompt = promptIds(tok, "Add: 12345 + 67890");
    generate(model, [prompt], [0], { maxNewTokens: 8, temperature: 0 }); // warm-up
    const t0 = performance.now();
    const ours = generate(model, [prompt], [0], { maxNewTokens: newTokens, temperature: 0 })[0]!.tokens;
    const frugalS = (performance.now() - t0) / 1000;
    await llamaGreedy(file, prompt, 8); // warm-up (load, first touch)
    const theirs = await llamaGreedy(file, prompt, newTokens);
    return {
      frugalTokensPerSec: ours.length / frugalS,
      llamaCppTokensPerSec: theirs.tokens.length / theirs.seconds,
      newTokens,
      sameTokens: JSON.stringify(ours) === JSON.stringify(theirs.tokens),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
