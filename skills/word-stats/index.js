import { tokenize } from "./tokenize.js";

// Pure computation: the input schema guarantees `text` is a string.
export default async function wordStats(input) {
  const words = tokenize(input.text);
  const counts = new Map();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const top = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, input.top ?? 5)
    .map(([word, count]) => ({ word, count }));
  return {
    words: words.length,
    lines: input.text === "" ? 0 : input.text.split("\n").length,
    characters: input.text.length,
    top,
  };
}
