/**
 * Nesting bounds for untrusted JSON values.
 *
 * Input arrives from callers and output from skills; both are checked against this bound where they
 * enter the host, before any validator, filter or digest walks them, so no walker of untrusted data
 * can recurse deeper than this (and the walkers that remain carry their own bound as well).
 */

/** Deepest nesting accepted for a call's input or output: `{}` and `[]` are depth 1, `{"a":[1]}` is 2. */
export const MAX_JSON_DEPTH = 64;

/**
 * The nesting depth of `value`, or `Infinity` as soon as it passes `limit` (then the rest is not
 * walked). Iterative: never uses the call stack, whatever the depth.
 */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > limit) return Infinity;
    if (depth > deepest) deepest = depth;
    const children = Array.isArray(v) ? v : Object.values(v);
    for (const c of children) if (c !== null && typeof c === "object") stack.push([c, depth + 1]);
  }
  return deepest;
}

/** Depth of a JSON text (brackets outside strings); `Infinity` once past `limit`. Linear, no parse. */
export function jsonTextDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return Infinity;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/** A message for a value nested past the bound, naming the bound and what to do. */
export function tooDeepMessage(what: string, limit = MAX_JSON_DEPTH): string {
  return `${what} is nested deeper than ${limit} levels; flatten it (the host refuses deeper JSON so that no validator or filter can be driven into unbounded recursion)`;
}
