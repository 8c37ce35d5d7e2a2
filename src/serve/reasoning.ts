// Splits a (possibly partial) completion into DeepSeek's two fields: the text inside <think>…</think>
// is reasoning_content, the text inside <answer>…</answer> is content. A completion that does not start
// with <think> is all content. Works on prefixes, so streaming sends the growth of each field.
export function splitReasoning(text: string): { reasoning: string; content: string } {
  if (!text.startsWith("<think>")) return { reasoning: "", content: text };
  const end = text.indexOf("</think>");
  if (end < 0) return { reasoning: text.slice(7), content: "" };
  let rest = text.slice(end + 8).trimStart();
  if (rest.startsWith("<answer>")) rest = rest.slice(8);
  const close = rest.indexOf("</answer>");
  return { reasoning: text.slice(7, end), content: close >= 0 ? rest.slice(0, close) : rest };
}
