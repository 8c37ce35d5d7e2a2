// pretrain: a fresh policy trained on whole chat-formatted task traces (loss on every token), optionally with
// drills of the traces' steps (plain text), and with its tokenizer made here: one token per character of the
// tasks' alphabet, or a byte-level BPE fitted on task traces and the safety split's English with digits kept
// single. No loading of an earlier stage.
import { z } from "zod";
import { Rng } from "../../common/rng.js";
import { parseModelConfig } from "../../model/config.js";
import { initModel } from "../../model/transformer.js";
import { policyCorpus } from "../../safety/source.js";
import { getTask, TASK_CHARS } from "../../tasks/index.js";
import { trainBpe } from "../../tokenizer/bpe-train.js";
import { renderCompletion } from "../../tokenizer/chat.js";
import { CharTokenizer, type Tokenizer } from "../../tokenizer/tokenizer.js";
import { SupervisedConfig, trainSupervised, type Trainee } from "../../train/supervised.js";
import type { StageKind } from "./kind.js";
import {
  CHAR_VOCAB,
  difficultyMap,
  drawProblems,
  levels,
  ModelShape,
  modelOf,
  stageName,
  stageTraceLengths,
  supervisedForecast,
  taskList,
  traceExample,
} from "./shared.js";

/**
 * The policy's tokenizer, made by pretrain. "char": one token per character of the tasks' alphabet.
 * { type: "bpe" }: byte-level BPE fitted on the tasks' traces and the safety training split's English, so a later
 * safety stage reads words rather than letters. Digits stay single tokens (arithmetic reads as with "char") unless
 * singleDigits is false: then numbers merge like words, and a trace takes fewer positions.
 */
const PolicyTokenizer = z
  .union(
    [
      z.literal("char"),
      z
        .object({
          type: z.literal("bpe"),
          vocabSize: z.number().int().min(300).default(1024),
          singleDigits: z.boolean().default(true),
        })
        .strict(),
    ],
    {
      error:
        'expected "char" or { "type": "bpe", "vocabSize": 300 or more (default 1024), "singleDigits": true|false }',
    },
  )
  .default("char");

export const Pretrain = SupervisedConfig.extend({
  type: z.literal("pretrain"),
  name: stageName,
  model: ModelShape,
  tasks: taskList,
  difficulties: difficultyMap,
  tokenizer: PolicyTokenizer,
  /** search tasks: share of traces that show the search with its dead ends (the rest: the path alone) */
  exploratoryShare: z.number().min(0).max(1).default(0.8),
  /** one difficulty per batch (drawn per step), so short problems are not padded to long ones' length */
  bucketByDifficulty: z.boolean().default(false),
  /** tasks with drills: the first drillSteps steps train on the traces' steps alone (their arithmetic) */
  drillSteps: z.number().int().min(0).default(0),
  /** after the drill steps, the share of micro-batches that are drills (whole ones: no trace is padded to a drill) */
  drillShare: z.number().min(0).max(1).default(0),
})
  .strict()
  .refine((s) => s.drillSteps < s.steps, { message: "drillSteps must be fewer than steps", path: ["drillSteps"] })
  .refine((s) => (s.drillSteps === 0 && s.drillShare === 0) || s.tasks.some((t) => getTask(t).drill), {
    message: "drills need a task that has them (countdown); set drillSteps and drillShare to 0",
    path: ["drillSteps"],
  });
export type Pretrain = z.infer<typeof Pretrain>;

/** The pretrained policy's tokenizer: chars of the tasks, or BPE over task traces + the safety split's English. */
export function policyTokenizer(s: Pretrain, seed: number): Tokenizer {
  if (s.tokenizer === "char") return CharTokenizer.fromChars(TASK_CHARS);
  const rng = new Rng(seed ^ 0x70c),
    traces = drawProblems(s.tasks, s.difficulties, rng, 2000).map(({ task, p }) => {
      const x = task.solve(p);
      return task.prompt(p) + renderCompletion(x.reasoning, x.answer);
    });
  return trainBpe([...traces, ...policyCorpus(rng, 20_000)], s.tokenizer.vocabSize, {
    singleDigits: s.tokenizer.singleDigits,
  });
}

/** The stage's difficulty map, or with bucketing one level per task drawn for this batch. */
function bucketed(s: Pretrain, rng: Rng): Record<string, number[]> {
  if (!s.bucketByDifficulty) return s.difficulties;
  return Object.fromEntries(s.tasks.map((name) => [name, [rng.pick(levels(getTask(name), s.difficulties))]]));
}

export const pretrain: StageKind<Pretrain> = {
  type: "pretrain",
  schema: Pretrain,
  inputs: () => [],
  evaluated: true,
  dataParallel: true,
  run(s, io) {
    const init = (): Trainee => {
      const tokenizer = policyTokenizer(s, io.seed);
      const config = parseModelConfig(
        { ...s.model, model_type: "llama", vocab_size: tokenizer.vocabSize },
        `stage ${s.name}.model`,
      );
      return { model: initModel(config, io.seed), tokenizer };
    };
    const drillers = s.tasks.map(getTask).filter((task) => task.drill);
    // micro-batch `micro` of the run: drills before drillSteps, then a drillShare of micro-batches
    const data = (micro: number, rng: Rng, t: Trainee) => {
      const drills =
        micro < s.drillSteps * s.accumulate || (s.drillShare > 0 && rng.next() < s.drillShare) ? s.batchSize : 0;
      const out = drawProblems(s.tasks, bucketed(s, rng), rng, s.batchSize - drills).map(({ task, p }) => {
        const trace = task.trace?.(p, rng, { exploratoryShare: s.exploratoryShare });
        return traceExample(t.tokenizer, task, p, true, trace);
      });
      for (let i = 0; i < drills; i++) {
        const ids = t.tokenizer.encode(rng.pick(drillers).drill!(rng));
        out.push({ ids, mask: ids.map(() => 1) });
      }
      return out;
    };
    return trainSupervised(io, init, data, s, s);
  },
  forecast(s, ctx) {
    const L = stageTraceLengths(s.tasks[0]!, s.difficulties, s.exploratoryShare);
    const config = modelOf(s.model, s.tokenizer === "char" ? CHAR_VOCAB : s.tokenizer.vocabSize);
    ctx.configs.set(s.name, config);
    // drill micro-batches: the first drillSteps steps, then drillShare of the rest
    const drillSteps = Math.round(s.drillSteps + (s.steps - s.drillSteps) * s.drillShare);
    const traces = supervisedForecast({ ...s, steps: s.steps - drillSteps }, config, L.prompt + L.completion, ctx);
    if (drillSteps === 0) return traces;
    // a drill's length in characters bounds its tokens (digits are single tokens)
    const rng = new Rng(1),
      drillTask = s.tasks.map(getTask).find((t) => t.drill)!,
      drillT = Math.max(...Array.from({ length: 16 }, () => drillTask.drill!(rng).length));
    const drills = supervisedForecast({ ...s, steps: drillSteps }, config, drillT, ctx);
    return {
      name: s.name,
      seconds: drills.seconds + traces.seconds,
      flops: drills.flops + traces.flops,
      detail: `${drills.detail} of drills + ${traces.detail}`,
    };
  },
};
