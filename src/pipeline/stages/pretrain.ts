// pretrain: a fresh policy trained on whole chat-formatted task traces (loss on every token), with its
// tokenizer made here: one token per character of the tasks' alphabet, or a byte-level BPE fitted on task
// traces and the safety split's English with digits kept single. No loading of an earlier stage.
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
 * { type: "bpe" }: byte-level BPE fitted on the tasks' traces and the safety training split's English, digits
 * kept single (arithmetic reads as with "char"), so a later safety stage reads words rather than letters.
 */
const PolicyTokenizer = z
  .union(
    [
      z.literal("char"),
      z.object({ type: z.literal("bpe"), vocabSize: z.number().int().min(300).default(1024) }).strict(),
    ],
    { error: 'expected "char" or { "type": "bpe", "vocabSize": 300 or more (default 1024) }' },
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
}).strict();
export type Pretrain = z.infer<typeof Pretrain>;

/** The pretrained policy's tokenizer: chars of the tasks, or BPE over task traces + the safety split's English. */
function policyTokenizer(s: Pretrain, seed: number): Tokenizer {
  if (s.tokenizer === "char") return CharTokenizer.fromChars(TASK_CHARS);
  const rng = new Rng(seed ^ 0x70c),
    traces = drawProblems(s.tasks, s.difficulties, rng, 2000).map(({ task, p }) => {
      const x = task.solve(p);
      return task.prompt(p) + renderCompletion(x.reasoning, x.answer);
    });
  return trainBpe([...traces, ...policyCorpus(rng, 20_000)], s.tokenizer.vocabSize, { singleDigits: true });
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
    const data = (_step: number, rng: Rng, t: Trainee) =>
      drawProblems(s.tasks, bucketed(s, rng), rng, s.batchSize).map(({ task, p }) => {
        const trace = task.trace?.(p, rng, { exploratoryShare: s.exploratoryShare });
        return traceExample(t.tokenizer, task, p, true, trace);
      });
    return trainSupervised(io, init, data, s, s);
  },
  forecast(s, ctx) {
    const L = stageTraceLengths(s.tasks[0]!, s.difficulties);
    const config = modelOf(s.model, s.tokenizer === "char" ? CHAR_VOCAB : s.tokenizer.vocabSize);
    ctx.configs.set(s.name, config);
    return supervisedForecast(s, config, L.maxPrompt + L.maxCompletion, ctx);
  },
};
