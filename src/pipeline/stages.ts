// Each recipe stage type mapped onto the shared trainers: what data it trains on and where it starts.
// pretrain: whole chat-formatted task traces, from a fresh model and a char tokenizer over the tasks'
// alphabet (or a digit-preserving byte-level BPE that also covers the safety split's English).
// sft: a small fixed cold-start set, loss on completions only. grpo: task rewards.
// rejection-sft: sample from an RL checkpoint, keep verified + well-formed, fine-tune on them.
// distill: a fresh, smaller student fine-tuned on a teacher's verified traces.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FrugalError, internal } from "../common/errors.js";
import { Rng } from "../common/rng.js";
import { loadModelDir } from "../model/load.js";
import { parseModelConfig } from "../model/config.js";
import { growVocab, mergeModels } from "../model/surgery.js";
import { initModel } from "../model/transformer.js";
import { generate } from "../model/sampler.js";
import { writeFileAtomic } from "../common/files.js";
import { promptIds, renderCompletion, sftExample, type SftExample } from "../tokenizer/chat.js";
import { CharTokenizer, SPECIAL, type Tokenizer } from "../tokenizer/tokenizer.js";
import { extendBpe, trainBpe } from "../tokenizer/bpe-train.js";
import { getTask, TASK_CHARS } from "../tasks/index.js";
import { accuracyReward, formatReward, r1Reward } from "../tasks/rewards.js";
import { problems, type Problem, type Task } from "../tasks/task.js";
import { trainGrpo, type PromptSource } from "../rl/grpo.js";
import { addUsage, noUsage, type LoopOutcome, type StageIO } from "../train/loop.js";
import { saveStage, trainSupervised, type Trainee } from "../train/supervised.js";
import { trainGuard } from "../safety/guard-train.js";
import { Guard } from "../safety/guard.js";
import { mixedSource, policyCorpus, safetyExample } from "../safety/source.js";
import { calibrateDecision, STEERING_FILE, tuneSteering, type DecisionCalibration } from "../safety/steer.js";
import type { StageConfig } from "./recipe.js";

export interface StageEnv {
  /** checkpoint directory of an earlier stage */
  checkpointOf(stage: string): string;
}

function levels(task: Task, d: Record<string, number[]> | number[] | undefined): readonly number[] {
  if (Array.isArray(d)) return d;
  return d?.[task.name] ?? task.difficulties;
}

/** A reference trace as a chat example; pretraining puts the loss on every token, SFT on the completion. */
function traceExample(tok: Trainee["tokenizer"], task: Task, p: Problem, wholeText: boolean): SftExample {
  const s = task.solve(p);
  const ex = sftExample(tok, task.prompt(p), renderCompletion(s.reasoning, s.answer));
  return wholeText ? { ids: ex.ids, mask: ex.ids.map(() => 1) } : ex;
}

/** n random train-split problems over the given tasks. */
function drawProblems(taskNames: string[], diffs: Record<string, number[]>, rng: Rng, n: number): { task: Task; p: Problem }[] {
  return Array.from({ length: n }, () => {
    const task = getTask(taskNames[rng.int(0, taskNames.length - 1)]!);
    const d = rng.pick(levels(task, diffs));
    return { task, p: problems(task, "train", 1, rng.nextU32(), [d])[0]! };
  });
}

/** The pretrained policy's tokenizer: chars of the tasks, or BPE over task traces + the safety split's English. */
function policyTokenizer(s: Extract<StageConfig, { type: "pretrain" }>, seed: number): Tokenizer {
  if (s.tokenizer === "char") return CharTokenizer.fromChars(TASK_CHARS);
  const rng = new Rng(seed ^ 0x70c), traces = drawProblems(s.tasks, s.difficulties, rng, 2000).map(({ task, p }) => {
    const x = task.solve(p);
    return task.prompt(p) + renderCompletion(x.reasoning, x.answer);
  });
  return trainBpe([...traces, ...policyCorpus(rng, 20_000)], s.tokenizer.vocabSize, { singleDigits: true });
}

/**
 * How to move a policy onto its BPE extended to vocabSize with merges learned on the safety training split's
 * English (policyCorpus, as the pretrained tokenizer was); old ids are unchanged. The task's traces must
 * tokenize exactly as before (new merges never touch digits), so the reasoning the model learned reads the
 * same. The tokenizer is learned once here; every policy it is applied to gets that one tokenizer.
 */
function policyVocabGrower(base: Tokenizer, vocabSize: number, seed: number, stage: string, traces: Trace[]): (t: Trainee) => Trainee {
  if (vocabSize === base.vocabSize) return (t) => t;
  if (base.kind !== "bpe") throw new FrugalError("RECIPE", `stage ${stage}: vocabSize grows a BPE policy tokenizer, but this policy's tokenizer is "${base.kind}"; pretrain with "tokenizer": { "type": "bpe", … } or drop vocabSize`);
  if (vocabSize < base.vocabSize) throw new FrugalError("RECIPE", `stage ${stage}: vocabSize ${vocabSize} is below the policy's ${base.vocabSize} tokens; a tokenizer can only grow`);
  const { tokenizer, pieces } = extendBpe(base, policyCorpus(new Rng(seed ^ 0x9e0), 20_000), vocabSize, { singleDigits: true });
  for (const x of traces) {
    const text = x.prompt + x.completion;
    if (JSON.stringify(tokenizer.encode(text)) !== JSON.stringify(base.encode(text))) throw internal(`stage ${stage}: the grown tokenizer splits a task trace differently (${JSON.stringify(text.slice(0, 60))})`);
  }
  return (t) => ({ model: growVocab(t.model, tokenizer.vocabSize, pieces), tokenizer });
}

/**
 * An ensemble inside one model: n members trained by `train` in member-m/ (own checkpoint, metrics and
 * resume; seed + 1009·m), then merged side by side (mergeModels) and saved as the stage's checkpoint, with
 * member 0's metrics as the stage's. Rerunning after a crash resumes the members and merges again.
 */
function trainMerged(io: StageIO, n: number, train: (mio: StageIO) => LoopOutcome & { trainee: Trainee }, config: unknown): LoopOutcome & { trainee: Trainee } {
  let usage = noUsage(), steps = 0;
  const members: Trainee[] = [];
  for (let m = 0; m < n; m++) {
    const o = train({ ...io, name: `${io.name}/member-${m}`, dir: join(io.dir, `member-${m}`), seed: io.seed + 1009 * m });
    usage = addUsage(usage, o.usage), steps += o.steps;
    if (o.stopped) return { ...o, steps, usage };
    members.push(o.trainee);
  }
  const trainee = { model: mergeModels(members.map((t) => t.model)), tokenizer: members[0]!.tokenizer };
  saveStage(io, trainee, steps, config, null, { members: n });
  copyFileSync(join(io.dir, "member-0", "metrics.jsonl"), join(io.dir, "metrics.jsonl"));
  return { steps, stopped: null, usage, trainee };
}

/** A train-split problem source for GRPO with R1's rule reward. */
export function taskSource(task: Task, diffs: readonly number[] | undefined): PromptSource<Problem> {
  const reward = r1Reward(0.1);
  return {
    draw: (rng, n) => problems(task, "train", n, rng.nextU32(), diffs ?? task.difficulties),
    prompt: (p) => task.prompt(p),
    reward: (text, p) => reward(text, { task, problem: p }),
  };
}

/** Samples completions and keeps those that are correct and well formed (deduplicated). */
function verifiedTraces(teacher: Trainee, task: Task, cfg: { prompts: number; samplesPerPrompt: number; sampleTemperature: number; maxNewTokens: number; difficulties?: number[] }, seed: number): { prompt: string; completion: string }[] {
  const ps = problems(task, "train", cfg.prompts, seed, cfg.difficulties ?? task.difficulties);
  const tok = teacher.tokenizer;
  const prompts = ps.flatMap((p) => Array.from({ length: cfg.samplesPerPrompt }, () => promptIds(tok, task.prompt(p))));
  const out = generate(teacher.model, prompts, prompts.map((_, i) => seed * 7919 + i), {
    maxNewTokens: cfg.maxNewTokens, temperature: cfg.sampleTemperature, topP: 1, stopTokens: [tok.tokenId(SPECIAL.end)], decode: (ids) => tok.decode(ids), batch: 32,
  });
  const seen = new Set<string>(), kept: { prompt: string; completion: string }[] = [];
  out.forEach((s, i) => {
    const p = ps[Math.floor(i / cfg.samplesPerPrompt)]!, ex = { task, problem: p };
    if (s.finishReason !== "stop" || !formatReward(s.text, ex).reward || !accuracyReward(s.text, ex).reward) return;
    const key = task.prompt(p) + "\u0000" + s.text;
    if (!seen.has(key)) { seen.add(key); kept.push({ prompt: task.prompt(p), completion: s.text }); }
  });
  return kept;
}

type Trace = { prompt: string; completion: string };
/** Verified traces are drawn once per stage and saved, so a resumed stage trains on the same data. */
function cachedTraces(io: StageIO, make: () => Trace[]): Trace[] {
  const f = join(io.dir, "traces.json");
  if (existsSync(f)) return JSON.parse(readFileSync(f, "utf8")) as Trace[];
  const traces = make();
  if (traces.length === 0) throw new FrugalError("DATA", `${io.name}: no sampled completion was both correct and well formed; train the source stage longer or sample more (prompts, samplesPerPrompt)`);
  mkdirSync(io.dir, { recursive: true });
  writeFileAtomic(f, JSON.stringify(traces));
  return traces;
}

/** One random trace as an SFT example. */
function traceOf(traces: Trace[], rng: Rng, t: Trainee): SftExample {
  const x = traces[rng.int(0, traces.length - 1)]!;
  return sftExample(t.tokenizer, x.prompt, x.completion);
}

function traceData(traces: Trace[], batchSize: number) {
  return (_step: number, rng: Rng, t: Trainee): SftExample[] => Array.from({ length: batchSize }, () => traceOf(traces, rng, t));
}

export type StageOutcome = LoopOutcome & { trainee: Trainee; notes?: Record<string, number> };

export function runStage(s: StageConfig, io: StageIO, env: StageEnv): StageOutcome {
  switch (s.type) {
    case "pretrain": {
      const init = (): Trainee => {
        const tokenizer = policyTokenizer(s, io.seed);
        const config = parseModelConfig({ ...s.model, model_type: "llama", vocab_size: tokenizer.vocabSize }, `stage ${s.name}.model`);
        return { model: initModel(config, io.seed), tokenizer };
      };
      return trainSupervised(io, init, (_step, rng, t) =>
        drawProblems(s.tasks, s.difficulties, rng, s.batchSize).map(({ task, p }) => traceExample(t.tokenizer, task, p, true)), s, s);
    }
    case "sft": {
      // the cold-start set is fixed: the same `examples` problems every time the stage runs
      const rng0 = new Rng(io.seed ^ 0xc01d);
      const set = drawProblems(s.tasks, s.difficulties, rng0, s.examples);
      return trainSupervised(io, () => loadModelDir(env.checkpointOf(s.from)), (_step, rng, t) =>
        Array.from({ length: s.batchSize }, () => { const x = set[rng.int(0, set.length - 1)]!; return traceExample(t.tokenizer, x.task, x.p, false); }), s, s);
    }
    case "grpo": {
      const task = getTask(s.task);
      return trainGrpo(io, () => loadModelDir(env.checkpointOf(s.from)), taskSource(task, s.difficulties), s, s);
    }
    case "rejection-sft": {
      const task = getTask(s.task);
      const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(env.checkpointOf(s.from)), task, s, io.seed));
      const out = trainSupervised(io, () => loadModelDir(env.checkpointOf(s.from)), traceData(traces, s.batchSize), s, s);
      return { ...out, notes: { traces: traces.length } };
    }
    case "distill": {
      const task = getTask(s.task);
      const teacherDir = env.checkpointOf(s.teacher);
      const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(teacherDir), task, s, io.seed));
      const init = (): Trainee => {
        const teacher = loadModelDir(teacherDir);
        const config = parseModelConfig({ ...s.student, model_type: "llama", vocab_size: teacher.model.config.vocab_size }, `stage ${s.name}.student`);
        return { model: initModel(config, io.seed), tokenizer: teacher.tokenizer };
      };
      const out = trainSupervised(io, init, traceData(traces, s.batchSize), s, s);
      return { ...out, notes: { traces: traces.length } };
    }
    case "guard":
      return trainGuard(io, s);
    case "safety-sft": {
      // the task half replays the source model's own verified completions (as R1 mixed its rejection-sampled
      // data into safety training): reference traces instead undid GRPO's gains (−27.6 points measured)
      const task = getTask(s.task);
      const traces = cachedTraces(io, () => verifiedTraces(loadModelDir(env.checkpointOf(s.from)), task,
        { prompts: s.tracePrompts, samplesPerPrompt: 4, sampleTemperature: 1, maxNewTokens: 96, difficulties: s.difficulties }, io.seed));
      let grow: ((t: Trainee) => Trainee) | null = null; // the grown tokenizer, learned once for every member
      const init = () => {
        const t = loadModelDir(env.checkpointOf(s.from));
        if (!s.vocabSize) return t;
        grow ??= policyVocabGrower(t.tokenizer, s.vocabSize, io.seed, s.name, traces);
        return grow(t);
      };
      const train = (mio: StageIO) => trainSupervised(mio, init, (_step, rng, t) =>
        Array.from({ length: s.batchSize }, () => rng.next() < s.safetyFrac
          ? safetyExample(t.tokenizer, rng, s) : traceOf(traces, rng, t)), s, s);
      if (s.members === 1) return { ...train(io), notes: { traces: traces.length } };
      return { ...trainMerged(io, s.members, train, s), notes: { traces: traces.length, members: s.members } };
    }
    case "safety-grpo": {
      const guard = Guard.load(env.checkpointOf(s.guard));
      const src = mixedSource(taskSource(getTask(s.task), s.difficulties), guard, s.safetyFrac, s.promptChars);
      const out = trainGrpo(io, () => {
        const t = loadModelDir(env.checkpointOf(s.from)), ctx = t.model.config.max_position_embeddings;
        if (s.promptChars + 2 + s.maxNewTokens > ctx) throw new FrugalError("RECIPE", `stage ${s.name}: promptChars ${s.promptChars} + 2 chat tokens + maxNewTokens ${s.maxNewTokens} exceeds the model's context of ${ctx}; lower one of them`);
        return t;
      }, src, s, s);
      if (out.stopped) return out;
      let trainee = out.trainee, calibration: DecisionCalibration | null = null;
      if (s.decisionBenignRate !== undefined) { // the refusal prior, set in the weights on dev draws (steer.ts)
        const c = calibrateDecision(trainee.model, trainee.tokenizer, s.promptChars, io.seed, s.decisionBenignRate);
        trainee = { ...trainee, model: c.model }, calibration = c.calibration;
        saveStage(io, trainee, out.steps, s, null, { calibration });
      }
      // how `serve --guard` combines this model's decision with its guard, tuned on dev draws (steer.ts)
      const steering = tuneSteering(trainee.model, trainee.tokenizer, guard, s.promptChars, io.seed);
      writeFileAtomic(join(io.dir, "checkpoint", STEERING_FILE), JSON.stringify(steering, null, 2));
      const cal: Record<string, number> = calibration ? { decisionBias: calibration.medianShift, decisionDevBenignRate: calibration.devBenignRate } : {};
      return { ...out, trainee, notes: { ...cal, steeringThreshold: steering.threshold, steeringDevBenignRate: steering.devBenignRate } };
    }
  }
}
