// Data parallelism over MPI: which rank this process is, in-place sum all-reduce of gradients, all-gather of
// JSON values, and each rank's share of a batch. Started without mpirun/srun (or on one rank) it is a
// one-process world and every call is a no-op. It does not launch processes (mpirun and Slurm do) and does no
// overlap of communication with compute: collectives run between steps, on the main thread only.
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FrugalError } from "../common/errors.js";
import type { Tensor } from "./tensor.js";

export interface World {
  rank: number;
  size: number;
  host: string;
  /** the MPI library, e.g. "Open MPI v4.1.4"; "" in a one-process world */
  library: string;
}
interface MpiAddon {
  init(): World;
  allreduceSum(a: Float32Array | Float64Array): void;
  allgather(bytes: Uint8Array): Uint8Array[];
  barrier(): void;
  abort(code: number): void;
  finalize(): void;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The MPI binding; FRUGAL_MPI_ADDON points elsewhere (a build of another MPI, or a test of the missing case). */
export const mpiAddonPath = process.env.FRUGAL_MPI_ADDON ?? join(here, "../../build/Release/frugal_mpi.node");

/** How many processes the launcher started (mpirun, MPICH's PMI, Slurm's srun); 1 when none did. */
export function launchedSize(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.OMPI_COMM_WORLD_SIZE ?? env.PMI_SIZE ?? env.PMIX_SIZE ?? env.SLURM_STEP_NUM_TASKS;
  const n = Number(v ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** How many ranks the launcher put on this machine (Open MPI, MPICH/Hydra, Slurm); 1 without a launcher. */
export function localRanks(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.OMPI_COMM_WORLD_LOCAL_SIZE ?? env.MPI_LOCALNRANKS ?? env.SLURM_NTASKS_PER_NODE ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

let addon: MpiAddon | null = null;
let current: World | null = null;
let commMs = 0;
let togetherCode: number | null = null;

/** Says that every rank exits with `code` at the same point (a budget stop), so MPI ends cleanly, not aborted. */
export function exitTogether(code: number): void {
  togetherCode = code;
}

function loadAddon(): MpiAddon {
  const m = { exports: {} as MpiAddon };
  try {
    // RTLD_GLOBAL: Open MPI's plugins resolve symbols of libmpi, which a plain (local) dlopen would hide
    process.dlopen(m, mpiAddonPath, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
  } catch (e) {
    throw new FrugalError(
      "DEPENDENCY",
      `this process was started as one of ${launchedSize()} MPI ranks, but frugal's MPI binding did not load ` +
        `(${(e as Error).message.split("\n")[0]}). Fix: apt-get install -y openmpi-bin libopenmpi-dev (or load your ` +
        "cluster's MPI module so that mpicc is on PATH), then `npm rebuild frugal`; or run without mpirun.",
    );
  }
  return m.exports;
}

/** This process's place in the job; the first call initialises MPI when a launcher started several ranks. */
export function world(): World {
  if (current) return current;
  if (launchedSize() <= 1) return (current = { rank: 0, size: 1, host: "", library: "" });
  addon = loadAddon();
  current = addon.init();
  // a rank that fails must take the job down with it: finalizing alone would leave the others in a collective
  process.on("exit", (code) => (code === 0 || togetherCode === code ? addon!.finalize() : addon!.abort(code)));
  return current;
}

/** Rank 0 writes checkpoints, metrics, the ledger and reports; the others only compute. */
export const isMain = (): boolean => world().rank === 0;

/** Milliseconds spent in collectives so far (includes waiting for slower ranks). */
export const commMilliseconds = (): number => commMs;

function timed<T>(f: () => T): T {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    commMs += performance.now() - t0;
  }
}

/** Sums `a` over all ranks, in place. */
export function allreduceSum(a: Float32Array | Float64Array): void {
  if (world().size > 1) timed(() => addon!.allreduceSum(a));
}

/** Sums every parameter's gradient over all ranks, in place. */
export function allreduceGrads(params: Map<string, Tensor>): void {
  if (world().size > 1) for (const p of params.values()) allreduceSum(p.grad);
}

/** Every rank's value of a JSON-serialisable `value`, in rank order. */
export function allgather<T>(value: T): T[] {
  if (world().size <= 1) return [value];
  const enc = new TextEncoder().encode(JSON.stringify(value) ?? "null");
  return timed(() => addon!.allgather(enc)).map((b) => JSON.parse(new TextDecoder().decode(b)) as T);
}

/** Rank 0's value of `value` on every rank (for decisions all ranks must take together). */
export function fromMain<T>(value: T): T {
  return world().size <= 1 ? value : allgather(value)[0]!;
}

/**
 * Runs `f` as a one-process world on this rank: inside it collectives are no-ops and this rank writes what it
 * trains. For work split whole between ranks (the guard's ensemble members), never for a data-parallel step.
 */
export function solo<T>(f: () => T): T {
  const outer = world();
  if (outer.size <= 1) return f();
  current = { ...outer, rank: 0, size: 1 };
  try {
    return f();
  } finally {
    current = outer;
  }
}

export function barrier(): void {
  if (world().size > 1) timed(() => addon!.barrier());
}

/**
 * Stops every rank, naming the ranks that differ from rank 0, unless all hold the same `fingerprint` of `what`
 * (ranks that read different files — no shared filesystem, a stale copy — would otherwise train apart).
 */
export function checkSameOnAllRanks(what: string, fingerprint: () => string, fix: string): void {
  if (world().size <= 1) return;
  const all = allgather(fingerprint()),
    odd = all.map((f, r) => (f === all[0] ? -1 : r)).filter((r) => r >= 0);
  if (odd.length)
    throw new FrugalError(
      "RANKS",
      `rank ${odd.join(", ")} ${odd.length > 1 ? "hold" : "holds"} other ${what} than rank 0: ${fix}`,
    );
}

/** Rank `rank`'s contiguous share [start, end) of n items in `unit`-sized blocks (a GRPO group stays whole). */
export function shareOf(n: number, unit = 1, w: Pick<World, "rank" | "size"> = world()): [number, number] {
  const blocks = Math.ceil(n / unit),
    per = Math.floor(blocks / w.size),
    extra = blocks % w.size;
  const b0 = w.rank * per + Math.min(w.rank, extra),
    b1 = b0 + per + (w.rank < extra ? 1 : 0);
  return [Math.min(n, b0 * unit), Math.min(n, b1 * unit)];
}
