// A Hugging Face model's own chat format: tokenizer_config.json's `chat_template` rendered by @huggingface/jinja,
// its end-of-turn token, and the text its generation prompt leaves open (R1-Distill and Qwen3 open `<think>`).
// frugal's task prompts gain one line asking for <think>/<answer> tags, so the same rule rewards score any model.
// No file I/O (model/load.ts reads the file) and no tokenization here.
import { Template } from "@huggingface/jinja";
import { FrugalError } from "../common/errors.js";

/** Appended to a task prompt for a model with its own template: the answer format frugal's rewards read. */
export const FORMAT_INSTRUCTION =
  "Think step by step inside <think> </think> tags, then give only the final answer inside <answer> </answer> tags.";

export interface ChatFormat {
  /** the prompt as the model expects it, ending where the assistant's reply starts */
  render(prompt: string): string;
  /** any conversation through the template (a brought guard's prompt and reply) */
  renderMessages(messages: { role: string; content: unknown }[], addGenerationPrompt: boolean): string;
  /** the token that ends the assistant's turn (eos_token, e.g. <|im_end|> or <|eot_id|>) */
  endToken: string;
  /** padding: pad_token, else the end token */
  padToken: string;
  /** text the generation prompt already opened inside the reply (e.g. "<think>\n"), prefixed to completions */
  opened: string;
  /** tokenizer_config.json as read, saved again with every checkpoint */
  config: Record<string, unknown>;
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string")
    return (v as { content: string }).content;
  return undefined;
}

/** The template string: chat_template as a string, or the entry named "default" of a list of named templates. */
function templateText(raw: unknown): string | undefined {
  if (typeof raw === "string") return raw;
  if (Array.isArray(raw)) {
    const d = raw.find((t: { name?: unknown }) => t?.name === "default") as { template?: unknown } | undefined;
    return typeof d?.template === "string" ? d.template : undefined;
  }
  return undefined;
}

/**
 * The chat format of a tokenizer_config.json, or null when it has no chat_template (a base model: frugal's own
 * <|user|>/<|assistant|> format is used then). `source` names the file in errors.
 */
export function chatFormat(raw: unknown, source: string): ChatFormat | null {
  if (typeof raw !== "object" || raw === null) throw new FrugalError("TOKENIZER", `${source}: expected a JSON object`);
  const cfg = raw as Record<string, unknown>;
  const text = templateText(cfg.chat_template);
  if (text === undefined) return null;
  const endToken = tokenText(cfg.eos_token);
  if (!endToken)
    throw new FrugalError("TOKENIZER", `${source}: has a chat_template but no eos_token; add the end-of-turn token`);
  let template: Template;
  try {
    template = new Template(text);
  } catch (e) {
    throw new FrugalError("TOKENIZER", `${source}: chat_template does not parse: ${(e as Error).message}`);
  }
  const vars = { bos_token: tokenText(cfg.bos_token) ?? "", eos_token: endToken, pad_token: tokenText(cfg.pad_token) };
  const renderMessages = (messages: { role: string; content: unknown }[], addGenerationPrompt: boolean): string => {
    try {
      return template.render({ ...vars, messages, add_generation_prompt: addGenerationPrompt });
    } catch (e) {
      throw new FrugalError("TOKENIZER", `${source}: chat_template failed to render: ${(e as Error).message}`);
    }
  };
  const render = (prompt: string) =>
    renderMessages([{ role: "user", content: `${prompt}\n${FORMAT_INSTRUCTION}` }], true);
  return {
    render,
    renderMessages,
    endToken,
    padToken: tokenText(cfg.pad_token) ?? endToken,
    opened: openedText(render("x")),
    config: cfg,
  };
}

/** What a generation prompt leaves open inside the reply: a trailing <think> (and the whitespace after it). */
function openedText(prompt: string): string {
  const m = /<think>\s*$/.exec(prompt);
  return m ? m[0] : "";
}
