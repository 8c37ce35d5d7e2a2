// What the MPI ranks of one run must agree on before the first step: the recipe, frugal's code (a hash of
// dist/), the run directory's verdict and the engine they compute with. A difference stops every rank at
// start with a message naming it, instead of weights drifting apart silently. One process checks nothing.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { FrugalError } from "../common/errors.js";
import { repoRoot } from "../common/files.js";
import { kernels } from "../engine/index.js";
import { threadsPerProcess } from "../engine/backend.js";
import { allgather, world } from "../engine/dist.js";

let codeHash: string | null = null;

/** A hash of frugal's compiled code (every .js under dist/) and its package version. */
export function codeVersion(): string {
  if (codeHash) return codeHash;
  const h = createHash("sha256"),
    dist = join(repoRoot, "dist");
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith(".js") ? [join(d, e.name)] : [],
    );
  h.update(readFileSync(join(repoRoot, "package.json")));
  for (const f of walk(dist).sort()) h.update(relative(dist, f)).update(readFileSync(f));
  return (codeHash = h.digest("hex").slice(0, 16));
}

export interface RankFacts {
  host: string;
  recipe: string;
  code: string;
  node: string;
  kernels: string;
  threads: number;
}

/** This rank's facts; `recipe` is the recipe's JSON as the run saves it. */
export function rankFacts(recipe: string): RankFacts {
  return {
    host: world().host,
    recipe: createHash("sha256").update(recipe).digest("hex").slice(0, 16),
    code: codeVersion(),
    node: process.version,
    kernels: kernels().name,
    threads: threadsPerProcess(),
  };
}

const FIX: Record<keyof Omit<RankFacts, "host" | "threads">, string> = {
  recipe: "give every rank the same recipe file (one path on a shared filesystem)",
  code: "install the same frugal build on every machine (same commit, then `npm ci`)",
  node: "use one Node.js version on every machine",
  kernels: "build the native kernels on every machine (`npm rebuild frugal`) or set FRUGAL_KERNELS the same everywhere",
};

/** Differences from rank 0, one line each; empty when all ranks agree. */
export function rankDifferences(all: RankFacts[]): string[] {
  const first = all[0]!,
    out: string[] = [];
  all.forEach((f, r) => {
    for (const k of Object.keys(FIX) as (keyof typeof FIX)[])
      if (f[k] !== first[k])
        out.push(`rank ${r} (${f.host}) has ${k} ${f[k]}, rank 0 (${first.host}) has ${first[k]}: ${FIX[k]}`);
  });
  return out;
}

/** Stops every rank when the ranks disagree; one process has nothing to compare (and hashes nothing). */
export function checkRanksAgree(recipe: string): void {
  if (world().size <= 1) return;
  const all = allgather(rankFacts(recipe)),
    diff = rankDifferences(all);
  if (diff.length)
    throw new FrugalError("RANKS", `the ${all.length} MPI ranks disagree, so none started:\n  ${diff.join("\n  ")}`);
}
