// FNV-1a over a string's UTF-16 code units: the one stable hash behind every train/test split (tasks,
// safety prompts, held-out phrase families). Not cryptographic.
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
