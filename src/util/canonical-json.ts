import { createHash } from "node:crypto";
import { MAX_JSON_DEPTH } from "./json-depth.js";

/** A value that cannot be made canonical: nested past the bound, cyclic, or not JSON. */
export class CanonicalJsonError extends Error {
  override readonly name = "CanonicalJsonError";
}

/**
 * Canonical JSON text of a JSON value: object keys sorted (by UTF-16 code units), no white space,
 * `undefined` members dropped as JSON.stringify drops them. Equal values give equal text.
 *
 * Iterative with an explicit stack, so untrusted input cannot overflow the call stack: values
 * nested deeper than `maxDepth` (or cyclic, which nests without end) throw CanonicalJsonError.
 */
export function canonicalJson(value: unknown, maxDepth = MAX_JSON_DEPTH): string {
  let out = "";
  // Work items: a value to write at a depth, or literal text (separators and closing brackets).
  const stack: ({ v: unknown; depth: number } | string)[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === "string") {
      out += item;
      continue;
    }
    const { v, depth } = item;
    if (v === null || typeof v !== "object") {
      const text = JSON.stringify(v);
      // undefined, functions and symbols have no JSON form; inside arrays JSON.stringify writes null.
      out += text === undefined ? "null" : text;
      continue;
    }
    if (depth >= maxDepth) throw new CanonicalJsonError(`value is nested deeper than ${maxDepth} levels`);
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      stack.push({ v: JSON.parse(JSON.stringify(v) ?? "null") as unknown, depth });
      continue;
    }
    if (Array.isArray(v)) {
      stack.push("]");
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ v: v[i], depth: depth + 1 });
        if (i > 0) stack.push(",");
      }
      stack.push("[");
      continue;
    }
    const record = v as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined && typeof record[k] !== "function" && typeof record[k] !== "symbol")
      .sort();
    stack.push("}");
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i]!;
      stack.push({ v: record[k], depth: depth + 1 });
      stack.push(`${i > 0 ? "," : ""}${JSON.stringify(k)}:`);
    }
    stack.push("{");
  }
  return out;
}

/** SHA-256 (hex) of the canonical JSON of `value`; throws CanonicalJsonError like canonicalJson. */
export function canonicalDigest(value: unknown, maxDepth = MAX_JSON_DEPTH): string {
  return createHash("sha256").update(canonicalJson(value, maxDepth)).digest("hex");
}
