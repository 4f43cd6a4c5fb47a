/** "Did you mean" for names people type: commands, flags, fields, skill names. */

/** ` (did you mean "x"?)` when one candidate is close to `word`, else "". */
export function didYouMean(word: string, candidates: readonly string[], show: (s: string) => string = (s) => `"${s}"`): string {
  const best = closest(word, candidates);
  return best === undefined ? "" : ` (did you mean ${show(best)}?)`;
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // Bounded work whatever the input: names are short, so longer ones are cut.
  const w = word.toLowerCase().slice(0, 64);
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(w.length / 3)) + 1;
  for (const c of candidates.slice(0, 1000)) {
    const d = c.toLowerCase().startsWith(w) && w.length >= 3 ? 1 : distance(w, c.toLowerCase().slice(0, 64));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]![j] = j;
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

type ZodLike = { _zod?: { def?: Record<string, unknown> } };

/**
 * The field names an object schema accepts at `path` inside a zod schema (for suggestions on an
 * unknown field). Walks through optional, default, nullable, pipe, array, record and union.
 */
export function knownKeysAt(schema: unknown, path: readonly PropertyKey[]): string[] {
  const unwrap = (s: unknown): ZodLike | undefined => {
    let cur = s as ZodLike | undefined;
    for (let i = 0; i < 16 && cur?._zod?.def; i++) {
      const def = cur._zod.def;
      const inner = def["innerType"] ?? (def["type"] === "pipe" ? def["in"] : undefined);
      if (!inner) break;
      cur = inner as ZodLike;
    }
    return cur;
  };
  const objectsAt = (s: unknown, rest: readonly PropertyKey[], depth: number): ZodLike[] => {
    const u = unwrap(s);
    const def = u?._zod?.def;
    if (!def || depth > 32) return [];
    if (def["type"] === "union") return (def["options"] as unknown[]).flatMap((o) => objectsAt(o, rest, depth + 1));
    if (rest.length === 0) return def["type"] === "object" ? [u!] : [];
    const [head, ...tail] = rest;
    if (def["type"] === "object") {
      const next = (def["shape"] as Record<string, unknown>)[String(head)];
      return next ? objectsAt(next, tail, depth + 1) : [];
    }
    if (def["type"] === "array") return objectsAt(def["element"], tail, depth + 1);
    if (def["type"] === "record") return objectsAt(def["valueType"], tail, depth + 1);
    return [];
  };
  const keys = objectsAt(schema, path, 0).flatMap((o) => Object.keys(o._zod!.def!["shape"] as Record<string, unknown>));
  return [...new Set(keys)];
}
