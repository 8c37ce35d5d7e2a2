// `frugal bench sample`: generated tokens per second on the reference configuration at batch 1 and 16
// (prompt of 16 tokens, 240 new tokens, temperature 1, no stops so every sequence runs the full length).
import { Rng } from "../common/rng.js";
import { referenceConfig } from "../model/config.js";
import { initModel } from "../model/transformer.js";
import { generate } from "../model/sampler.js";
import { kernels } from "../engine/index.js";

export interface SampleBench { tokensPerSecBatch1: number; tokensPerSecBatch16: number; newTokens: number; kernels: string }

export function benchSample(newTokens = 240): SampleBench {
  const model = initModel(referenceConfig, 1), rng = new Rng(4);
  const prompt = () => Array.from({ length: 16 }, () => rng.int(0, referenceConfig.vocab_size - 1));
  const run = (batch: number) => {
    const prompts = Array.from({ length: batch }, prompt);
    generate(model, prompts.slice(0, 1), [0], { maxNewTokens: 8, batch }); // warm-up
    const t0 = performance.now();
    const out = generate(model, prompts, prompts.map((_, i) => i), { maxNewTokens: newTokens, temperature: 1, batch });
    const tokens = out.reduce((a, s) => a + s.tokens.length, 0);
    return tokens / ((performance.now() - t0) / 1000);
  };
  return { tokensPerSecBatch1: run(1), tokensPerSecBatch16: run(16), newTokens, kernels: kernels().description };
}
