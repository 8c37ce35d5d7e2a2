// Timed training steps of a fresh model at a given shape: what the forecast calibrates on and `frugal bench
// engine` reports. Random ids and targets; the first two steps are warm-up and not timed. No statistics here.
import * as E from "../engine/index.js";
import { Rng } from "../common/rng.js";
import type { ModelConfig } from "../model/config.js";
import { forward, initModel } from "../model/transformer.js";

export function timeTrainSteps(
  config: ModelConfig,
  batch: number,
  seq: number,
  steps: number,
  model = initModel(config, 1),
): number[] {
  const opt = E.adamwInit(model.params);
  const rng = new Rng(2);
  const ids = Int32Array.from({ length: batch * seq }, () => rng.int(0, config.vocab_size - 1));
  const tgt = Int32Array.from({ length: batch * seq }, () => rng.int(0, config.vocab_size - 1));
  const times: number[] = [];
  for (let s = 0; s < steps + 2; s++) {
    const t0 = performance.now();
    E.backward(E.crossEntropy(forward(model, ids, batch, seq), tgt));
    E.adamwUpdate(model.params, opt, E.defaultAdamW, 1e-3);
    E.endStep();
    E.syncKernels();
    if (s >= 2) times.push(performance.now() - t0);
  }
  return times;
}
