// `frugal export gguf --model DIR --out FILE.gguf`: a checkpoint as a GGUF file llama.cpp and Ollama load.
// `frugal export merged --model DIR --out DIR2`: LoRA adapters folded in, a plain Hugging Face directory.
import type { Command } from "commander";
import { FrugalError } from "../common/errors.js";
import { saveCheckpoint } from "../model/checkpoint.js";
import { loadModelDir } from "../model/load.js";
import { mergeLora } from "../model/lora.js";
import { exportGguf } from "../serve/gguf.js";
import { checkpointName } from "./serve.js";

export function registerExport(program: Command): void {
  const exp = program.command("export").description("export a checkpoint to other formats");
  exp
    .command("gguf")
    .description("GGUF (llama, qwen2, qwen3; F32, F16 or BF16) for llama.cpp, Ollama, node-llama-cpp")
    .requiredOption("--model <dir>", "model checkpoint directory")
    .requiredOption("--out <file>", "the .gguf file to write (atomically)")
    .option("--name <name>", "general.name in the file (default: the checkpoint's stage directory name)")
    .option("--dtype <type>", "f32, or f16 / bf16 for the 2-D weights (norms and biases stay f32)", "f32")
    .action((o: { model: string; out: string; name?: string; dtype: string }) => {
      if (o.dtype !== "f32" && o.dtype !== "f16" && o.dtype !== "bf16")
        throw new FrugalError("ARG", `--dtype ${o.dtype} is not supported; expected f32, f16 or bf16`);
      const t = loadModelDir(o.model);
      mergeLora(t.model);
      const name = o.name ?? checkpointName(o.model);
      const r = exportGguf(t.model, t.tokenizer, o.out, name, o.dtype);
      console.log(`wrote ${o.out}: ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(2)} MB`);
    });
  exp
    .command("merged")
    .description("a Hugging Face directory with any LoRA adapters merged into the weights (float32)")
    .requiredOption("--model <dir>", "model checkpoint or PEFT adapter directory")
    .requiredOption("--out <dir>", "the directory to write (replaced atomically)")
    .action((o: { model: string; out: string }) => {
      const t = loadModelDir(o.model),
        adapters = t.model.lora?.adapters.size ?? 0;
      mergeLora(t.model);
      saveCheckpoint(o.out, t.model, { tokenizer: t.tokenizer.toJSON(), tokenizerConfig: t.tokenizer.chat?.config });
      console.log(`wrote ${o.out}: ${adapters ? `${adapters} adapters merged` : "no adapters to merge"}`);
    });
}
