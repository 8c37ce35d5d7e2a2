// Several runs of one stage from the same start ("members"), each in member-m/ under the stage with its own
// checkpoint, metrics and resume, seeded seed + 1009·m: one after another data-parallel on every rank, or spread
// whole between the ranks; trainCombined then makes them one model as the caller says (averaged, side by side)
// and saves it as the stage's.
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { allgather, barrier, isMain, solo, world } from "../engine/dist.js";
import type { Model } from "../model/transformer.js";
import { addUsage, noUsage, sumOutcomes, type LoopOutcome, type StageIO } from "./loop.js";
import { saveStage, type Trainee } from "./supervised.js";

/** The StageIO of member m: its own directory, name and seed. */
export function memberIO(io: StageIO, m: number): StageIO {
  return { ...io, name: `${io.name}/member-${m}`, dir: join(io.dir, `member-${m}`), seed: io.seed + 1009 * m };
}

type Train<T> = (mio: StageIO) => LoopOutcome & { trainee: T };

/**
 * Under MPI: this rank's units of work, each trained whole and alone (`solo`: its own batches in full, no
 * all-reduce to wait at) until one stops; then every rank waits, and the ranks' outcomes are summed.
 */
export function trainOwnShare(units: readonly (() => LoopOutcome)[]): LoopOutcome {
  let mine = sumOutcomes([]);
  for (const unit of units) {
    if (mine.stopped) break;
    mine = sumOutcomes([mine, solo(unit)]);
  }
  barrier();
  return sumOutcomes(allgather(mine));
}

/**
 * Trains n members with `train` (resuming any that a crash left part-way) and returns them with their summed
 * steps and usage. When one is stopped (budget, signal) the outcome says why, and `members` is short.
 * `spread`: under MPI each rank first trains its members (m ≡ rank mod ranks) whole and alone (`solo`: its own
 * batches in full, no all-reduce to wait at), all wait, and the members are read back from their folders (one a
 * rank could not see — no shared folder — is trained there, data-parallel). Otherwise every member is data-parallel.
 */
function trainMembers<T>(io: StageIO, n: number, train: Train<T>, spread = false): LoopOutcome & { members: T[] } {
  const { rank, size } = world();
  let usage = noUsage(),
    steps = 0;
  if (spread && size > 1 && n > 1) {
    const mine: (() => LoopOutcome)[] = [];
    for (let m = rank; m < n; m += size) mine.push(() => train(memberIO(io, m)));
    const shares = trainOwnShare(mine);
    ((steps = shares.steps), (usage = shares.usage));
    if (shares.stopped) return { ...shares, members: [] };
  }
  const members: T[] = [];
  for (let m = 0; m < n; m++) {
    const o = train(memberIO(io, m));
    usage = addUsage(usage, o.usage);
    steps += o.steps;
    members.push(o.trainee);
    if (o.stopped) return { steps, stopped: o.stopped, usage, members };
  }
  return { steps, stopped: null, usage, members };
}

/**
 * trainMembers, then the members made one model by `combine` (averaged, side by side) and saved as the stage's
 * checkpoint with `config` and `meta`, and member 0's per-step metrics as the stage's (one run's curves, not a mix).
 * Rerunning after a crash resumes the members and combines them again. Stopped: nothing saved, the outcome says why.
 */
export function trainCombined(
  io: StageIO,
  n: number,
  train: Train<Trainee>,
  combine: (models: Model[]) => Model,
  config: unknown,
  meta: Record<string, unknown>,
  spread = false,
): LoopOutcome {
  const o = trainMembers(io, n, train, spread);
  if (o.stopped) return { steps: o.steps, stopped: o.stopped, usage: o.usage };
  const trainee = { model: combine(o.members.map((t) => t.model)), tokenizer: o.members[0]!.tokenizer };
  saveStage(io, trainee, o.steps, config, null, meta);
  const from = join(io.dir, "member-0", "metrics.jsonl");
  if (isMain() && existsSync(from)) copyFileSync(from, join(io.dir, "metrics.jsonl"));
  return { steps: o.steps, stopped: null, usage: o.usage };
}
