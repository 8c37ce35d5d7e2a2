// `frugal bench engine|sample`: measurement commands that print numbers (and ratios against a reference
// measured in the same run). They never assert a speed.
import type { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { benchEngine } from "../bench/engine.js";
import { benchSample } from "../bench/sample.js";
import { benchVsLlamaCpp, llamaThreads } from "../bench/llama.js";
import { benchServe } from "../bench/serve.js";
import { loadModelDir } from "../model/load.js";
import { benchByom, byomShapes } from "../bench/byom.js";
import { benchMpi, mpiWorker } from "../bench/mpi.js";

/** --kernels: which kernel set the measurement runs on (the same as FRUGAL_KERNELS, checked here). */
function chooseKernels(set: string | undefined): void {
  if (set === undefined) return;
  if (!["native", "reference", "webgpu"].includes(set))
    throw new FrugalError("ARG", `--kernels must be native, reference or webgpu, got "${set}"`);
  process.env.FRUGAL_KERNELS = set;
}

export function registerBench(program: Command): void {
  const bench = program.command("bench").description("measure engine and sampler speed");
  registerBenchSample(bench);
  registerBenchServe(bench);
  registerBenchByom(bench);
  registerBenchMpi(bench);
  bench
    .command("engine")
    .description(
      "train the reference config (≈3.4M params; batch 16 × seq 128 unless given) and compare with PyTorch CPU",
    )
    .option("--steps <n>", "timed steps (after 2 warm-up steps)", "8")
    .option("--batch <n>", "sequences per step", "16")
    .option("--seq <n>", "positions per sequence (long ones show the attention's share)", "128")
    .option("--no-torch", "skip the PyTorch comparison")
    .option("--kernels <set>", "native, reference or webgpu (webgpu is also timed against the CPU kernels)")
    .option("--json", "print one JSON line")
    .action((o: { steps: string; batch: string; seq: string; torch: boolean; json?: boolean; kernels?: string }) => {
      chooseKernels(o.kernels);
      const r = benchEngine({
        steps: positiveInt("--steps", o.steps),
        batch: positiveInt("--batch", o.batch),
        seq: positiveInt("--seq", o.seq),
        torch: o.torch,
      });
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`reference config: ${(r.params / 1e6).toFixed(2)}M params, batch ${r.batch} × seq ${r.seq}`);
      console.log(`kernels:      ${r.kernels}`);
      if (r.blas) console.log(`OpenBLAS:     ${r.blas}`);
      console.log(`step:         ${r.stepMs.toFixed(1)} ms (median of ${r.steps})`);
      if (r.cpuStepMs !== undefined)
        console.log(
          `CPU kernels:  ${r.cpuStepMs.toFixed(1)} ms/step → webgpu runs at ${r.speedupVsCpu!.toPrecision(2)}× the CPU's speed`,
        );
      for (const p of r.gpuProfile?.slice(0, 8) ?? [])
        console.log(
          `  ${p.shader.padEnd(20)} ${String(p.calls).padStart(5)} dispatches ${p.ms.toFixed(0).padStart(7)} ms`,
        );
      console.log(`throughput:   ${Math.round(r.tokensPerSec)} tokens/s, ${r.gflops.toFixed(1)} GFLOP/s achieved`);
      if (r.torchStepMs !== undefined) {
        console.log(
          `PyTorch ${r.torchVersion}: ${r.torchStepMs.toFixed(1)} ms/step → frugal/PyTorch = ${r.ratio!.toFixed(3)}×`,
        );
        if (r.torchSameBlasStepMs !== undefined) {
          console.log(
            `PyTorch with frugal's OpenBLAS coretype too: ${r.torchSameBlasStepMs.toFixed(1)} ms/step → ${r.ratioSameBlas!.toFixed(3)}×`,
          );
        }
      } else if (r.torchNote) console.log(`PyTorch:      ${r.torchNote}`);
    });
}

export function registerBenchSample(bench: Command): void {
  bench
    .command("sample")
    .description("sampling tokens/s with the KV cache at batch 1 and 16 on the reference config")
    .option("--json", "print one JSON line")
    .option("--kernels <set>", "native, reference or webgpu")
    .option(
      "--vs-llama-cpp",
      "also decode the same exported GGUF with llama.cpp (node-llama-cpp) at batch 1, side by side",
    )
    .action(async (o: { json?: boolean; vsLlamaCpp?: boolean; kernels?: string }) => {
      chooseKernels(o.kernels);
      if (o.vsLlamaCpp) {
        const v = await benchVsLlamaCpp();
        if (o.json) {
          console.log(JSON.stringify(v));
          return;
        }
        console.log(`batch 1, ${v.newTokens} greedy tokens from the same GGUF-exported reference model:`);
        console.log(`frugal     ${Math.round(v.frugalTokensPerSec)} tokens/s`);
        console.log(
          `llama.cpp  ${Math.round(v.llamaCppTokensPerSec)} tokens/s (${llamaThreads()} thread${llamaThreads() > 1 ? "s" : ""})   (frugal/llama.cpp ${(v.frugalTokensPerSec / v.llamaCppTokensPerSec).toFixed(2)}×; same tokens: ${v.sameTokens ? "yes" : "no"})`,
        );
        return;
      }
      const r = benchSample();
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`kernels:   ${r.kernels}`);
      const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
      console.log(
        `${r.newTokens} new tokens per sequence; median of 6 runs after ≥ 1 s of warm-up runs (cold = the first run in the process)`,
      );
      console.log(
        `batch 1:   ${Math.round(r.tokensPerSecBatch1)} tokens/s   (cold ${Math.round(r.coldTokensPerSecBatch1)}; op by op ${Math.round(r.opByOpTokensPerSecBatch1)}, fused blocks ${x(r.tokensPerSecBatch1, r.opByOpTokensPerSecBatch1)})`,
      );
      console.log(
        `batch 16:  ${Math.round(r.tokensPerSecBatch16)} tokens/s total   (cold ${Math.round(r.coldTokensPerSecBatch16)}; op by op ${Math.round(r.opByOpTokensPerSecBatch16)}, fused blocks ${x(r.tokensPerSecBatch16, r.opByOpTokensPerSecBatch16)})`,
      );
    });
}

export function registerBenchServe(bench: Command): void {
  bench
    .command("serve")
    .description(
      "server throughput: the same requests one at a time vs 16 concurrent (continuous batching), and 64 concurrent streams",
    )
    .option("--model <dir>", "a checkpoint to serve (default: the reference config, freshly initialised)")
    .option("--json", "print one JSON line")
    .action(async (o: { model?: string; json?: boolean }) => {
      const r = await benchServe(o.model ? loadModelDir(o.model) : undefined);
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`one at a time:   ${Math.round(r.sequentialTokensPerSec)} tokens/s`);
      console.log(
        `16 concurrent:   ${Math.round(r.concurrent16TokensPerSec)} tokens/s  (${r.speedup.toFixed(2)}× — largest decode batch ${r.maxBatch})`,
      );
      console.log(`64 concurrent streams: ${r.streams64 - r.streamErrors} completed, ${r.streamErrors} errors`);
    });
}

export function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new FrugalError("ARG", `${flag} expects a positive integer, got "${v}"`);
  return n;
}

/** The GRPO step's shape, shared by the benchmarks that time one. */
const grpoStepOptions = (c: Command) =>
  c
    .option("--prompts <n>", "prompts in the GRPO step", "8")
    .option("--samples <n>", "samples per prompt", "8")
    .option("--new-tokens <n>", "tokens sampled per completion", "128");

function registerBenchByom(bench: Command): void {
  grpoStepOptions(
    bench
      .command("byom")
      .description("a real HF shape (random weights): one LoRA GRPO step, decoding, peak memory, vs PyTorch")
      .option("--shape <name>", `one of ${[...byomShapes().keys()].join(", ")}`, "qwen2.5-0.5b"),
  )
    .option("--prompt-tokens <n>", "tokens per prompt", "32")
    .option("--micro <n>", "sequences per forward/backward of the update", "4")
    .option("--rank <n>", "LoRA rank (alpha = 2 × rank, every linear layer)", "16")
    .option("--kv-f32", "the GRPO step's rollouts keep a float32 KV cache (default bfloat16: kvCacheBf16)")
    .option("--bf16-base", "keep the frozen base's projections in bfloat16 only during the step (bf16Base)")
    .option("--no-torch", "skip the PyTorch comparison")
    .option("--no-llama-cpp", "skip the llama.cpp decoding comparison")
    .option("--json", "print one JSON line")
    .action(
      async (
        o: Record<string, string> & {
          torch: boolean;
          llamaCpp: boolean;
          json?: boolean;
          kvF32?: boolean;
          bf16Base?: boolean;
        },
      ) => {
        const n = (flag: string, key: string) => positiveInt(flag, o[key]!);
        const r = await benchByom(
          {
            shape: o.shape!,
            prompts: n("--prompts", "prompts"),
            samples: n("--samples", "samples"),
            newTokens: n("--new-tokens", "newTokens"),
            promptTokens: n("--prompt-tokens", "promptTokens"),
            micro: n("--micro", "micro"),
            rank: n("--rank", "rank"),
            kvBf16: !o.kvF32,
            bf16Base: !!o.bf16Base,
            torch: o.torch,
            llamaCpp: o.llamaCpp,
          },
          (m) => process.stderr.write(`[bench byom] ${m}\n`),
        );
        if (o.json) {
          console.log(JSON.stringify(r));
          return;
        }
        const M = (x: number) => `${(x / 1e6).toFixed(x < 1e7 ? 2 : 0)}M`;
        console.log(`${r.shape}: ${M(r.params)} params, LoRA ${M(r.loraParams)} (rank ${o.rank}, every linear layer)`);
        console.log(
          `GRPO step (${r.sequences} × ${r.seqTokens} tokens): ${r.grpoStepS.toFixed(0)} s ` +
            `(sampling ${r.grpoSampleS.toFixed(0)} s, log-probs + update ${r.grpoUpdateS.toFixed(0)} s)`,
        );
        console.log(`train: ${r.trainTokensPerSec.toFixed(1)} tokens/s (${r.micro} sequences per micro-batch)`);
        if (r.trainRatio !== undefined)
          console.log(
            `PyTorch ${r.torchVersion}: ${r.torchTrainTokensPerSec!.toFixed(1)} tokens/s → ${r.trainRatio.toFixed(2)}×`,
          );
        else if (r.torchNote) console.log(`PyTorch: ${r.torchNote}`);
        console.log(
          `decode: ${r.sampleTokensPerSecBatch1.toFixed(1)} tokens/s at batch 1, ${r.sampleTokensPerSecBatch16.toFixed(1)} at 16`,
        );
        if (r.llamaCpp) {
          const l = r.llamaCpp;
          console.log(
            `batch 1, bf16 weights, ${l.threads} threads: frugal ${l.frugalTokensPerSec.toFixed(1)} tokens/s, llama.cpp ` +
              `${l.llamaCppTokensPerSec.toFixed(1)} on BF16 GGUF (${(l.frugalTokensPerSec / l.llamaCppTokensPerSec).toFixed(2)}×, ` +
              `same greedy tokens: ${l.sameTokens ? "yes" : "no"}), ${l.llamaCppF16TokensPerSec.toFixed(1)} on F16 ` +
              `(${(l.frugalTokensPerSec / l.llamaCppF16TokensPerSec).toFixed(2)}×)`,
          );
        } else if (r.llamaCppNote) console.log(r.llamaCppNote);
        console.log(
          `peak RSS: ${r.grpoPeakRssMb.toFixed(0)} MB through the GRPO step, ${r.peakRssMb.toFixed(0)} MB with the ` +
            "bf16 decoding copies (before the GGUF exports)",
        );
      },
    );
}

function registerBenchMpi(bench: Command): void {
  grpoStepOptions(
    bench
      .command("mpi")
      .description("GRPO steps of the reference config in one process and on N MPI ranks: the all-reduce's share")
      .option("--ranks <n>", "MPI ranks to launch with mpirun", "2")
      .option("--steps <n>", "timed GRPO steps (after one warm-up step)", "3"),
  )
    .option("--fight", "also time unbound ranks whose OpenMP threads spin (slow: shows what frugal avoids)")
    .option("--worker", "(internal) run inside each rank and print rank 0's measurement")
    .option("--json", "print one JSON line")
    .action((o: Record<string, string> & { worker?: boolean; json?: boolean; fight?: boolean }) => {
      const n = (flag: string, key: string) => positiveInt(flag, o[key]!);
      const opts = {
        ranks: n("--ranks", "ranks"),
        steps: n("--steps", "steps"),
        prompts: n("--prompts", "prompts"),
        samples: n("--samples", "samples"),
        newTokens: n("--new-tokens", "newTokens"),
        fight: !!o.fight,
      };
      if (o.worker) {
        const r = mpiWorker(opts);
        if (r) console.log(JSON.stringify(r));
        return;
      }
      const r = benchMpi(opts, (m) => process.stderr.write(`[bench mpi] ${m}\n`));
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const c = r.config;
      console.log(
        `reference config ${(c.params / 1e6).toFixed(2)}M params; GRPO step = ${c.prompts} × ${c.samples} samples of ${c.newTokens} tokens`,
      );
      for (const x of r.runs)
        console.log(
          `${x.label.padEnd(40)} step ${x.stepMs.toFixed(0).padStart(6)} ms (${x.speedup.toFixed(2)}×), all-reduce ` +
            `${x.allreduceMs.toFixed(2)} ms, in collectives ${x.commMs.toFixed(1)} ms`,
        );
      console.log(
        `gradient all-reduce share of a step on ${opts.ranks} bound ranks: ${(100 * r.allreduceShare).toFixed(2)}%`,
      );
      console.log(
        `model check: ${opts.ranks} one-thread ranks predicted ${r.check.predictedMs.toFixed(0)} ms/step from one ` +
          `one-thread process, measured ${r.check.measuredMs.toFixed(0)} ms`,
      );
      console.log(`all-reduce here: ${r.fit.latencyMs.toFixed(3)} ms + bytes at ${r.fit.gbPerS.toFixed(2)} GB/s`);
      for (const m of r.model)
        console.log(
          `  ${String(m.ranks).padStart(2)} machines: ${m.stepMs.toFixed(0).padStart(6)} ms/step here, ${m.stepMs10GbE.toFixed(0).padStart(6)} ms over 10 GbE`,
        );
    });
}
