import { Validator, type Schema } from "@cfworker/json-schema";
import type { Issue } from "../errors.js";
import { jsonDepth, MAX_JSON_DEPTH, tooDeepMessage } from "../util/json-depth.js";
import { compile, RegexError, type LinearRegex } from "../util/regex.js";
import { KNOWN_FORMATS } from "./json-schema-formats.js";

/*
 * Input and output schemas, compiled once at load.
 *
 * @cfworker/json-schema interprets the schema (it never generates code from skill data) but runs
 * `pattern` and `patternProperties` as backtracking JavaScript RegExps: `pattern: "^(a+)+$"` and 26
 * bytes of input blocked the host for seconds. Every such pattern is compiled here at load on the
 * linear-time engine (an invalid or unsupported one refuses the manifest with its field), and the
 * validator is run with those compiled patterns standing in for RegExp (see `withPatterns`).
 */

/** Keywords whose value is one subschema. */
const ONE = ["not", "if", "then", "else", "additionalProperties", "unevaluatedProperties", "propertyNames", "contains", "additionalItems", "unevaluatedItems", "items"];
/** Keywords whose value is a list of subschemas. */
const LIST = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];
/** Keywords whose value maps names to subschemas. */
const MAP = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"];
/** Schema nesting accepted in a manifest (a schema is trusted less than code: it is walked at load). */
const MAX_SCHEMA_DEPTH = 2 * MAX_JSON_DEPTH;

/** The patterns of a schema, compiled; or the issues found (every one, each with its field). */
export function compileSchemaPatterns(schema: unknown, field: string, file: string): { patterns: Map<string, LinearRegex>; issues: Issue[]; tooDeep: boolean } {
  const patterns = new Map<string, LinearRegex>();
  const issues: Issue[] = [];
  const add = (source: string, at: string) => {
    if (patterns.has(source)) return;
    try {
      patterns.set(source, compile(source, "u"));
    } catch (err) {
      if (!(err instanceof RegexError)) throw err;
      issues.push({ file, field: at, message: `invalid pattern ${JSON.stringify(source.length > 200 ? source.slice(0, 200) + "…" : source)}: ${err.reason}` });
    }
  };
  if (jsonDepth(schema, MAX_SCHEMA_DEPTH) === Infinity) {
    return { patterns, issues: [{ file, field, message: `the schema is nested deeper than ${MAX_SCHEMA_DEPTH} levels` }], tooDeep: true };
  }
  // Explicit stack: the walk is bounded by the depth check above and uses no recursion.
  const stack: [unknown, string][] = [[schema, field]];
  while (stack.length > 0) {
    const [node, at] = stack.pop()!;
    if (node === null || typeof node !== "object" || Array.isArray(node)) continue;
    const s = node as Record<string, unknown>;
    if ("pattern" in s) {
      if (typeof s["pattern"] === "string") add(s["pattern"], `${at}.pattern`);
      else issues.push({ file, field: `${at}.pattern`, message: "must be a string (a regular expression)" });
    }
    if ("format" in s && (typeof s["format"] !== "string" || !KNOWN_FORMATS.has(s["format"]))) {
      issues.push({ file, field: `${at}.format`, message: `unknown format ${JSON.stringify(s["format"])}; known: ${[...KNOWN_FORMATS].join(", ")}` });
    }
    const pp = s["patternProperties"];
    if (pp !== null && typeof pp === "object" && !Array.isArray(pp)) for (const key of Object.keys(pp)) add(key, `${at}.patternProperties.${key}`);
    for (const k of ONE) if (k in s) stack.push([s[k], `${at}.${k}`]);
    for (const k of LIST) {
      const list = s[k];
      if (Array.isArray(list)) list.forEach((sub, i) => stack.push([sub, `${at}.${k}[${i}]`]));
    }
    for (const k of MAP) {
      const map = s[k];
      if (map !== null && typeof map === "object" && !Array.isArray(map)) for (const [name, sub] of Object.entries(map)) stack.push([sub, `${at}.${k}.${name}`]);
    }
  }
  return { patterns, issues, tooDeep: false };
}

/**
 * Runs `fn` with the global RegExp answering from `patterns` (linear-time, compiled at load).
 * The validator constructs `new RegExp(pattern, "u")` for `pattern`/`patternProperties` and only
 * calls `.test` on it; validation is synchronous, so nothing else runs while the stand-in is there.
 */
function withPatterns<T>(patterns: ReadonlyMap<string, LinearRegex>, fn: () => T): T {
  const native = globalThis.RegExp;
  // biome-ignore lint/complexity/useArrowFunction: the validator calls it with `new`, which an arrow function refuses.
  const standIn = function (source: unknown) {
    const re = typeof source === "string" ? patterns.get(source) : undefined;
    // Every pattern of the schema was compiled at load; anything else is refused, never backtracked.
    if (!re) throw new RegexError(String(source), "the pattern was not compiled at load");
    return { test: (text: unknown) => re.test(String(text)) };
  };
  globalThis.RegExp = standIn as unknown as RegExpConstructor;
  try {
    return fn();
  } finally {
    globalThis.RegExp = native;
  }
}

const WRAPPER_KEYWORDS = new Set(["properties", "items", "prefixItems", "allOf", "$ref", "false", "patternProperties", "dependentSchemas"]);

/**
 * A validator for `schema` that returns the problems found in a value (none: valid). `what` names
 * the value in messages (`input`, `output`). Never throws: a value nested past {@link MAX_JSON_DEPTH}
 * and a schema that recurses without end are reported as problems.
 */
export function compileValidator(schema: Record<string, unknown> | undefined, what: string, file = "<manifest>"): (value: unknown) => string[] {
  if (schema === undefined) return (value) => (jsonDepth(value) === Infinity ? [tooDeepMessage(what)] : []);
  const { patterns, issues } = compileSchemaPatterns(schema, what, file);
  if (issues.length > 0) throw new SchemaPatternError(issues);
  const validator = new Validator(schema as Schema, "2020-12", false);
  return (value) => {
    if (jsonDepth(value) === Infinity) return [tooDeepMessage(what)];
    let res;
    try {
      res = withPatterns(patterns, () => validator.validate(value));
    } catch (err) {
      // A schema whose $ref loops back on itself without descending into the value recurses until
      // the stack ends; the value is bounded by MAX_JSON_DEPTH, so only such a schema gets here.
      const reason = err instanceof RangeError ? "the schema recurses without end (a $ref that loops back without descending into the value)" : (err as Error).message;
      return [`${what}: could not be validated: ${reason}`];
    }
    if (res.valid) return [];
    const out: string[] = [];
    for (const e of res.errors) {
      // Wrapper errors ("property x does not match") repeat what the leaf error says better.
      if (WRAPPER_KEYWORDS.has(e.keyword) && res.errors.length > 1) continue;
      const at =
        what +
        e.instanceLocation
          .replace(/^#/, "")
          .split("/")
          .filter(Boolean)
          .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
          .join("");
      const prop = /^Property "(.*)" does not match additional properties schema\.$/.exec(e.error);
      out.push(prop ? `${at}: unknown property "${prop[1]}" (not in the schema)` : `${at}: ${e.error}`);
    }
    return [...new Set(out)];
  };
}

/** A schema whose patterns do not compile; carries every issue with its field. */
export class SchemaPatternError extends Error {
  override readonly name = "SchemaPatternError";
  constructor(readonly issues: Issue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join("; "));
  }
}
