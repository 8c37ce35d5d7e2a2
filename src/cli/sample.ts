// `frugal sample --model DIR --prompt TEXT`: wraps the prompt in the chat template, samples n completions
// and prints them (reasoning and answer as generated), one block per sample; with --calculator, the task's
// calculator and referee write into them as in eval.
import type { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { loadModelDir } from "../model/load.js";
import { useBf16Decoding } from "../model/half.js";
import { generate } from "../model/sampler.js";
import { completionText, endId, promptIds } from "../tokenizer/chat.js";
import { positiveInt } from "./bench.js";
import { Rng } from "../common/rng.js";
import type { Intervene } from "../model/sampler.js";
import { getTask } from "../tasks/index.js";
import { calculatorFor } from "../tasks/eval.js";
import type { Task } from "../tasks/task.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";

export function num(flag: string, v: string, lo: number, hi: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < lo || n > hi)
    throw new FrugalError("ARG", `${flag} expects a number in [${lo}, ${hi}], got "${v}"`);
  return n;
}

/** --calculator needs a task that has one (eval and sample). */
export function needCalculator(task: Task): void {
  if (!task.calculator)
    throw new FrugalError(
      "ARG",
      `--calculator: task ${task.name} has no calculator; use countdown or countdown-subset`,
    );
}

/** A fresh calculator tool per sample for the problem the prompt states; ARG errors name what to pass instead. */
function calculatorOf(name: string, prompt: string, tok: Tokenizer): () => Intervene {
  const task = getTask(name);
  needCalculator(task);
  const p = task.fromPrompt?.(prompt);
  if (!p)
    throw new FrugalError(
      "ARG",
      `--calculator ${task.name}: the prompt must state a problem as the task writes it, e.g. "${task.prompt(task.generate(new Rng(1), task.difficulties[0]!))}"; got "${prompt.slice(0, 60)}"`,
    );
  return () => calculatorFor(task, tok, p)!;
}

export function registerSample(program: Command): void {
  program
    .command("sample")
    .description("sample completions from a checkpoint")
    .requiredOption("--model <dir>", "checkpoint directory (config.json + model.safetensors + tokenizer.json)")
    .requiredOption("--prompt <text>", "the user prompt")
    .option("--n <n>", "number of samples", "1")
    .option("--temperature <t>", "sampling temperature (0 = greedy)", "0.6")
    .option("--top-p <p>", "nucleus sampling mass", "0.95")
    .option("--top-k <k>", "keep the k most likely tokens (0 = off)", "0")
    .option("--max-tokens <n>", "maximum new tokens", "256")
    .option("--seed <s>", "seed of the first sample (sample i uses seed + i)", "0")
    .option("--bf16", "decode from bfloat16 copies of the matrices (faster; rounds float32 weights)")
    .option(
      "--calculator <task>",
      'the task\'s calculator and referee in the loop; the prompt states its problem ("61 75 65 20 to 63")',
    )
    .option("--json", "print JSON")
    .action((o: Record<string, string | boolean>) => {
      const ck = loadModelDir(String(o.model)),
        tok = ck.tokenizer;
      if (o.bf16) useBf16Decoding(ck.model);
      const n = positiveInt("--n", String(o.n)),
        seed = num("--seed", String(o.seed), 0, 2 ** 31);
      const ids = promptIds(tok, String(o.prompt)),
        tool = o.calculator ? calculatorOf(String(o.calculator), String(o.prompt), tok) : undefined;
      const maxNew = Math.min(
        positiveInt("--max-tokens", String(o.maxTokens)),
        ck.model.config.max_position_embeddings - ids.length,
      );
      if (maxNew <= 0)
        throw new FrugalError(
          "CONTEXT",
          `the prompt is ${ids.length} tokens, the model's context is ${ck.model.config.max_position_embeddings}; shorten the prompt`,
        );
      const out = generate(
        ck.model,
        Array.from({ length: n }, () => ids),
        Array.from({ length: n }, (_, i) => seed + i),
        {
          maxNewTokens: maxNew,
          temperature: num("--temperature", String(o.temperature), 0, 100),
          topP: num("--top-p", String(o.topP), 1e-9, 1),
          topK: num("--top-k", String(o.topK), 0, 1e9),
          stopTokens: [endId(tok)],
          decode: (t) => completionText(tok, t),
          intervene: tool,
        },
      );
      if (o.json) {
        console.log(
          JSON.stringify(
            out.map((s) => ({
              text: s.text,
              tokens: s.tokens.length,
              finishReason: s.finishReason,
              ...(tool ? { toolTokens: s.forced?.length ?? 0, refused: s.refused?.length ?? 0 } : {}),
            })),
          ),
        );
        return;
      }
      out.forEach((s, i) =>
        console.log(`--- sample ${i + 1} (${s.tokens.length} tokens, ${s.finishReason})\n${s.text}`),
      );
    });
}
