// The data-parallel helpers that need no MPI: each rank's share of a batch, the launcher's environment, and
// the one-process world where every collective is the identity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allgather, allreduceSum, fromMain, launchedSize, localRanks, shareOf, world } from "./dist.js";

test("shareOf: contiguous shares cover every item once, blocks of `unit` stay whole, extra blocks go first", () => {
  for (const [n, unit, size] of [
    [10, 1, 3],
    [64, 8, 2],
    [24, 4, 4],
    [3, 1, 4],
    [0, 1, 2],
    [17, 4, 3],
  ] as const) {
    const shares = Array.from({ length: size }, (_, rank) => shareOf(n, unit, { rank, size }));
    assert.equal(shares[0]![0], 0);
    assert.equal(shares[size - 1]![1], n, `${n}/${unit}/${size} ends at n`);
    for (let r = 1; r < size; r++) assert.equal(shares[r]![0], shares[r - 1]![1], "shares are contiguous");
    for (const [a, b] of shares) {
      assert.ok(a % unit === 0 || a === n, `share starts on a block boundary (${a}, unit ${unit})`);
      assert.ok(b >= a);
    }
  }
  assert.deepEqual(shareOf(10, 1, { rank: 0, size: 3 }), [0, 4]);
  assert.deepEqual(shareOf(10, 1, { rank: 2, size: 3 }), [7, 10]);
  assert.deepEqual(shareOf(64, 8, { rank: 1, size: 2 }), [32, 64]);
  assert.deepEqual(shareOf(3, 1, { rank: 3, size: 4 }), [3, 3], "a rank with nothing to do gets an empty share");
});

test("launchedSize and localRanks read Open MPI's, MPICH's and Slurm's variables; none means one process", () => {
  assert.equal(launchedSize({}), 1);
  assert.equal(launchedSize({ OMPI_COMM_WORLD_SIZE: "4" }), 4);
  assert.equal(launchedSize({ PMI_SIZE: "3" }), 3);
  assert.equal(launchedSize({ SLURM_STEP_NUM_TASKS: "8" }), 8);
  assert.equal(launchedSize({ SLURM_NTASKS: "8" }), 1, "an sbatch allocation alone launches nothing");
  assert.equal(launchedSize({ OMPI_COMM_WORLD_SIZE: "x" }), 1);
  assert.equal(localRanks({ OMPI_COMM_WORLD_LOCAL_SIZE: "2" }), 2);
  assert.equal(localRanks({ MPI_LOCALNRANKS: "6" }), 6);
  assert.equal(localRanks({}), 1);
});

test("one-process world: rank 0 of 1, and every collective returns its input unchanged", () => {
  assert.deepEqual(world(), { rank: 0, size: 1, host: "", library: "" });
  const a = Float32Array.of(1, 2, 3);
  allreduceSum(a);
  assert.deepEqual([...a], [1, 2, 3]);
  assert.deepEqual(allgather({ x: 1 }), [{ x: 1 }]);
  assert.equal(fromMain("stop"), "stop");
});
