// The task registry: look a task up by name; an unknown name lists the available ones.
import { FrugalError } from "../common/errors.js";
import { addition, arithmetic } from "./arithmetic.js";
import { countdown, countdownSubset } from "./countdown.js";
import { knights } from "./knights.js";
import type { Task } from "./task.js";

export const TASKS: Record<string, Task<any>> = {
  addition,
  arithmetic,
  countdown,
  "countdown-subset": countdownSubset,
  knights,
};

export function getTask(name: string): Task<any> {
  const t = TASKS[name];
  if (!t) throw new FrugalError("TASK", `unknown task "${name}"; available: ${Object.keys(TASKS).join(", ")}`);
  return t;
}

/** Every character any task prompt, trace or answer can contain (the char tokenizer's alphabet). */
export const TASK_CHARS = "0123456789+-*/=(),.:; abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
