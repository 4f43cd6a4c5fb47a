import { RE2JS } from "re2js";

/**
 * Linear-time regular expressions for every pattern that comes from a manifest or a policy.
 *
 * JavaScript's RegExp backtracks: `^(a+)+$` against 26 bytes blocks the event loop for seconds, and
 * the host must never be at the mercy of a pattern it was handed. These patterns run on RE2JS, a
 * pure-JavaScript port of RE2 whose matching time is linear in the input. The JavaScript syntax
 * people write is translated where RE2 spells it differently (`\uHHHH`, `\u{X}`, `[^]`, the line
 * terminators `.` excludes, the white space `\s` matches); what RE2 cannot do in linear time is
 * refused at compile time with a {@link RegexError} naming the feature:
 *
 * - backreferences: `\1`, `\k<name>`
 * - lookahead and lookbehind: `(?=`, `(?!`, `(?<=`, `(?<!`
 * - the flags `y` (sticky), `d` (indices) and `v` (set notation); `g` and `u` are accepted and have
 *   no effect on {@link LinearRegex.test} (matching is always by Unicode code point)
 * - repetition counts above 1000 (`a{1001}`, also as the product of nested counts)
 *
 * Known differences that remain: inside a class `\S`, `\w`, `\d` and `\b` are ASCII (as in JavaScript
 * for `\w`, `\d`, `\b`); with the `m` flag only `\n` ends a line for `^` and `$`.
 */
export const UNSUPPORTED_REGEX_FEATURES = ["backreferences (\\1, \\k<name>)", "lookahead (?= (?!", "lookbehind (?<= (?<!", "flags y, d, v", "repetition counts above 1000"] as const;

/** Longest pattern source accepted, in characters. */
export const MAX_REGEX_SOURCE_CHARS = 4096;
/** Largest compiled program accepted, in RE2 instructions (matching cost per input character grows with it). */
export const MAX_REGEX_PROGRAM_SIZE = 20_000;

/** A pattern that could not be compiled; `reason` says what is wrong and how to fix it. */
export class RegexError extends Error {
  override readonly name = "RegexError";
  readonly pattern: string;
  readonly reason: string;

  constructor(pattern: string, reason: string) {
    super(`invalid regular expression /${pattern.length > 200 ? pattern.slice(0, 200) + "…" : pattern}/: ${reason}`);
    this.pattern = pattern;
    this.reason = reason;
  }
}

/** A compiled linear-time pattern. Stateless: `test` never depends on a previous call. */
export interface LinearRegex {
  /** the pattern as written (JavaScript syntax) */
  readonly source: string;
  /** the flags as written */
  readonly flags: string;
  /** whether the pattern matches anywhere in `text`, like `RegExp.prototype.test` without `g` state */
  test(text: string): boolean;
  /** `text` with every match replaced by `replacement`, taken literally (no `$1` expansion) */
  replaceAll(text: string, replacement: string): string;
}

const FLAG_BITS: Readonly<Record<string, number>> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, g: 0, u: 0 };

/** JavaScript's `\s` (ECMA-262 WhiteSpace and LineTerminator), as class items. RE2's `\s` is ASCII only. */
const JS_SPACE = "\\t\\n\\x{b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}";
/** What `.` matches without the `s` flag in JavaScript: anything but a line terminator. */
const JS_DOT = "[^\\n\\r\\x{2028}\\x{2029}]";

/**
 * Compiles `source` (JavaScript regular-expression syntax, without the slashes) with `flags`
 * (any of `i`, `m`, `s`, `g`, `u`). Throws {@link RegexError} for an invalid pattern or one that
 * uses a feature listed in {@link UNSUPPORTED_REGEX_FEATURES}.
 */
export function compile(source: string, flags = ""): LinearRegex {
  if (typeof source !== "string") throw new RegexError(String(source), "the pattern must be a string");
  if (source.length > MAX_REGEX_SOURCE_CHARS) throw new RegexError(source, `the pattern is ${source.length} characters long; at most ${MAX_REGEX_SOURCE_CHARS} are accepted`);
  let bits = 0;
  for (const [i, f] of [...flags].entries()) {
    const bit = FLAG_BITS[f];
    if (bit === undefined) throw new RegexError(source, `flag "${f}" is not supported (supported: i, m, s, g, u)`);
    if (flags.indexOf(f) !== i) throw new RegexError(source, `flag "${f}" is given twice`);
    bits |= bit;
  }
  const translated = translate(source, flags.includes("s"));
  let re: RE2JS;
  try {
    re = RE2JS.compile(translated, bits);
  } catch (err) {
    throw new RegexError(source, describe(err));
  }
  if (re.programSize() > MAX_REGEX_PROGRAM_SIZE) {
    throw new RegexError(source, `the compiled pattern has ${re.programSize()} instructions; at most ${MAX_REGEX_PROGRAM_SIZE} are accepted (reduce repetition counts)`);
  }
  return {
    source,
    flags,
    test: (text) => re.test(text),
    replaceAll: (text, replacement) => re.matcher(text).replaceAll(() => replacement),
  };
}

/** Compiles a pattern written `/source/flags` (as in policies and process argument patterns). */
export function compileSlashed(written: string): LinearRegex {
  const m = /^\/([^]+)\/([a-z]*)$/.exec(written);
  if (!m) throw new RegexError(written, "must be written /regex/ with optional flags");
  return compile(m[1]!, m[2]!);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const text = (err as { getDescription?: () => string }).getDescription?.() ?? err.message;
    return text.replace(/^error parsing regexp: /, "");
  }
  return String(err);
}

function unsupported(source: string, what: string): RegexError {
  return new RegexError(source, `${what} are not supported: patterns run on a linear-time engine (RE2), which cannot express them`);
}

/** Rewrites JavaScript-only spellings into RE2 syntax, refusing what RE2 cannot run. One pass, no recursion. */
function translate(source: string, dotAll: boolean): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === "\\") {
      const n = source[i + 1];
      if (n === undefined) throw new RegexError(source, "the pattern ends with a lone backslash");
      if (n === "u") {
        const [codePoint, length] = unicodeEscape(source, i);
        out += `\\x{${codePoint.toString(16)}}`;
        i += length - 1;
        continue;
      }
      if (!inClass && n >= "1" && n <= "9") throw unsupported(source, "backreferences (\\1 … \\9)");
      if (n === "k" && source[i + 2] === "<") throw unsupported(source, "named backreferences (\\k<name>)");
      if (n === "s") {
        out += inClass ? JS_SPACE : `[${JS_SPACE}]`;
        i++;
        continue;
      }
      if (n === "S" && !inClass) {
        out += `[^${JS_SPACE}]`;
        i++;
        continue;
      }
      out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      if (source.startsWith("[^]", i)) {
        out += "[\\x{0}-\\x{10ffff}]";
        i += 2;
        continue;
      }
      if (source.startsWith("[]", i)) throw new RegexError(source, "the empty class [] (which never matches) is not supported");
      inClass = true;
      out += c;
      if (source[i + 1] === "^") {
        out += "^";
        i++;
      }
      // A `]` right after `[` or `[^` closes the class in JavaScript but is a literal in RE2: handled above.
      continue;
    }
    if (c === "(" && source[i + 1] === "?") {
      const a = source[i + 2];
      const b = source[i + 3];
      if (a === "=" || a === "!") throw unsupported(source, "lookahead assertions ((?= and (?!)");
      if (a === "<" && (b === "=" || b === "!")) throw unsupported(source, "lookbehind assertions ((?<= and (?<!)");
    }
    if (c === "." && !dotAll) {
      out += JS_DOT;
      continue;
    }
    out += c;
  }
  return out;
}

/** Reads `\uHHHH` (joining a surrogate pair) or `\u{X…}` at `i`; returns the code point and the escape's length. */
function unicodeEscape(source: string, i: number): [number, number] {
  const braced = /^\\u\{([0-9a-fA-F]{1,6})\}/.exec(source.slice(i, i + 10));
  if (braced) {
    const cp = parseInt(braced[1]!, 16);
    if (cp > 0x10ffff) throw new RegexError(source, `\\u{${braced[1]}} is beyond the last Unicode code point`);
    return [cp, braced[0].length];
  }
  const four = /^\\u([0-9a-fA-F]{4})/.exec(source.slice(i, i + 6));
  if (!four) throw new RegexError(source, "\\u must be followed by four hex digits or {hex digits}");
  const high = parseInt(four[1]!, 16);
  if (high >= 0xd800 && high <= 0xdbff) {
    const low = /^\\u([dD][c-fC-F][0-9a-fA-F]{2})/.exec(source.slice(i + 6, i + 12));
    if (low) return [0x10000 + ((high - 0xd800) << 10) + (parseInt(low[1]!, 16) - 0xdc00), 12];
  }
  if (high >= 0xd800 && high <= 0xdfff) throw new RegexError(source, `\\u${four[1]} is a lone surrogate, which cannot be matched`);
  return [high, 6];
}
