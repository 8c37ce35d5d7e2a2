// AdamW with decoupled weight decay and global-norm gradient clipping, as a pure init/update pair over
// named parameters. Schedules (warmup, cosine) live in train/, not here: update() takes the lr it is given.
import { FrugalError } from "../common/errors.js";
import { kernels } from "./backend.js";
import { onDevice, type Tensor } from "./tensor.js";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradClip: number;
}
export const defaultAdamW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

/** m and v may live on a GPU between updates: read them through onHost() (checkpoints do). */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

export function adamwInit(params: Map<string, Tensor>): AdamWState {
  const m = new Map<string, Float32Array>(),
    v = new Map<string, Float32Array>();
  for (const [name, p] of params) {
    m.set(name, new Float32Array(p.size));
    v.set(name, new Float32Array(p.size));
  }
  return { step: 0, m, v };
}

/** Global L2 norm of all gradients; throws naming the first parameter whose gradient is NaN/Inf. */
export function gradNorm(params: Map<string, Tensor>): number {
  let total = 0;
  for (const [name, p] of params) {
    const s = kernels().k.sumsq(p.gdev);
    if (!Number.isFinite(s)) {
      throw new FrugalError(
        "NONFINITE",
        `gradient of ${name} [${p.shape.join(", ")}] is not finite; the step was skipped and the weights were not changed. Lower the learning rate or check the data.`,
      );
    }
    total += s;
  }
  return Math.sqrt(total);
}

/**
 * One AdamW step with lr; clips the global gradient norm to cfg.gradClip (0 = off), applies weight decay
 * only to matrices (norm gains and vectors are not decayed), then zeroes the gradients.
 * Returns the norm before clipping.
 */
export function adamwUpdate(params: Map<string, Tensor>, state: AdamWState, cfg: AdamWConfig, lr: number): number {
  const norm = gradNorm(params);
  const gradScale = cfg.gradClip > 0 && norm > cfg.gradClip ? cfg.gradClip / norm : 1;
  state.step++;
  const bc1 = 1 - Math.pow(cfg.beta1, state.step),
    bc2 = 1 - Math.pow(cfg.beta2, state.step);
  for (const [name, p] of params) {
    const m = state.m.get(name),
      v = state.v.get(name);
    if (!m || !v)
      throw new FrugalError(
        "OPTIMIZER",
        `optimizer state has no entry for parameter ${name}; was adamwInit called with the same parameters?`,
      );
    const wd = p.shape.length >= 2 ? cfg.weightDecay : 0;
    kernels().k.adamw(
      p.dev,
      p.gdev,
      onDevice(m),
      onDevice(v),
      lr,
      cfg.beta1,
      cfg.beta2,
      cfg.eps,
      wd,
      bc1,
      bc2,
      gradScale,
    );
    p.zeroGrad();
  }
  return norm;
}
