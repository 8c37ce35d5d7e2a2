// Helpers shared by the engine's tests only: a trainable parameter of seeded normal values.
import { randn, type Rng } from "../common/rng.js";
import { param } from "./tensor.js";
import type { Tensor } from "./tensor.js";

/** A parameter of `shape` drawn from N(0, std²) with `rng`. */
export function randomParam(rng: Rng, shape: number[], std = 1): Tensor {
  return param(
    shape,
    randn(
      rng,
      shape.reduce((a, b) => a * b, 1),
      std,
    ),
  );
}
