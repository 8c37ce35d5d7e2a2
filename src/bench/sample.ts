// `frugal bench sample`: generated tokens per second on the reference configuration at batch 1 and 16
// (prompt of 16 tokens, 240 new tokens, temperature 1, no stops so every sequence runs the full length).
// Each figure is the median of 6 timed runs after ≥ 1 s of untimed runs of the same shape (a fresh
// process decodes ~2× slower for its first ~1,000 tokens while V8 compiles and the CPU settles; the first
// run is reported as "cold"). The reference, measured in the same run and interleaved run by run with
// the fused path, is the op-by-op decode path (fused blocks off).
import { Rng } from "../common/rng.js";
import { referenceConfig } from "../model/config.js";
import { initModel, type Model } from "../model/transformer.js";
import { generate } from "../model/sampler.js";
import { kernels } from "../engine/index.js";
import { median } from "../common/stats.js";

export interface SampleBench {
  tokensPerSecBatch1: number;
  tokensPerSecBatch16: number;
  coldTokensPerSecBatch1: number;
  coldTokensPerSecBatch16: number;
  opByOpTokensPerSecBatch1: number;
  opByOpTokensPerSecBatch16: number;
  newTokens: number;
  kernels: string;
}

/** Per path: the cold (first) run's tokens/s and the median of the timed runs, fused and op by op interleaved. */
function rates(model: Model, batch: number, newTokens: number, runs = 6): { cold: number; fused: number; ops: number } {
  const rng = new Rng(4);
  const prompts = Array.from({ length: batch }, () =>
    Array.from({ length: 16 }, () => rng.int(0, referenceConfig.vocab_size - 1)),
  );
  const one = (fusedDecode: boolean) => {
    const t0 = performance.now();
    const out = generate(
      model,
      prompts,
      prompts.map((_, i) => i),
      { maxNewTokens: newTokens, temperature: 1, batch, fusedDecode },
    );
    return out.reduce((a, s) => a + s.tokens.length, 0) / ((performance.now() - t0) / 1000);
  };
  const cold = one(true);
  for (const t0 = performance.now(); performance.now() - t0 < 1000;) {
    one(true);
    one(false);
  }
  const fused: number[] = [],
    ops: number[] = [];
  // ABBA order: a run is faster or slower by its place in the pair (the previous run's 30 MB KV cache is
  // still being collected), so each path takes each place equally often
  for (let r = 0; r < runs; r++) {
    if (r % 2 === 0) {
      fused.push(one(true));
      ops.push(one(false));
    } else {
      ops.push(one(false));
      fused.push(one(true));
    }
  }
  return { cold, fused: median(fused), ops: median(ops) };
}

export function benchSample(newTokens = 240): SampleBench {
  const description = kernels().description; // load the kernels (and any BLAS probe) before the cold run
  const model = initModel(referenceConfig, 1);
  const b1 = rates(model, 1, newTokens),
    b16 = rates(model, 16, newTokens);
  return {
    tokensPerSecBatch1: b1.fused,
    tokensPerSecBatch16: b16.fused,
    coldTokensPerSecBatch1: b1.cold,
    coldTokensPerSecBatch16: b16.cold,
    opByOpTokensPerSecBatch1: b1.ops,
    opByOpTokensPerSecBatch16: b16.ops,
    newTokens,
    kernels: description,
  };
}
