// Builds the native kernel addon (build/Release/frugal_native.node) with node-gyp against /usr headers, and,
// where mpicc exists, the MPI binding (build/Release/frugal_mpi.node) that data-parallel runs need.
// A failed build is not fatal: frugal then runs on its plain-TypeScript reference kernels and says so.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

// npm passes its bundled node-gyp in npm_config_node_gyp; outside npm, look beside the node binary.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
].filter((p) => p && existsSync(p));
const [cmd, args] = candidates.length ? [process.execPath, [candidates[0], "rebuild"]] : ["node-gyp", ["rebuild"]];
const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, npm_config_nodedir: "/usr" } });
if (r.error) console.warn(`frugal: could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  console.warn(
    "\nfrugal: the native kernels did not build (see above); frugal will run on the slower reference kernels.\n" +
      "  Fix: install a C compiler and OpenBLAS (Debian: apt-get install -y build-essential libopenblas-dev),\n" +
      "  then run `npm rebuild frugal` (or `node scripts/build-native.mjs` in a checkout).\n",
  );
}

// The MPI binding: compiled by mpicc itself, so it links whichever MPI the machine has (Open MPI, MPICH).
const mpicc = spawnSync("mpicc", ["--version"], { stdio: "ignore" });
if (mpicc.status === 0) {
  const nodeInclude = ["/usr/include/node", join(dirname(process.execPath), "../include/node")].find((d) =>
    existsSync(join(d, "node_api.h")),
  );
  mkdirSync("build/Release", { recursive: true });
  const m = spawnSync(
    "mpicc",
    ["-O2", "-shared", "-fPIC", "-Wall", `-I${nodeInclude ?? "/usr/include/node"}`, "src/engine/native/mpi.c"].concat([
      "-o",
      "build/Release/frugal_mpi.node",
    ]),
    { stdio: "inherit" },
  );
  if (m.status !== 0) console.warn("\nfrugal: the MPI binding did not build (see above); runs stay on one process.\n");
}
