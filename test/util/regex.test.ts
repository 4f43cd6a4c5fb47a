import { describe, expect, it } from "vitest";
import { compile, compileSlashed, RegexError, MAX_REGEX_SOURCE_CHARS } from "../../dist/src/util/regex.js";

describe("linear-time regex: JavaScript syntax, RE2 engine", () => {
  it.each([
    // source, flags, text, expected
    ["^ab+c$", "", "abbbc", true],
    ["^ab+c$", "", "abbbd", false],
    ["abc", "i", "xxABCxx", true],
    ["^b$", "m", "a\nb\nc", true],
    ["^b$", "", "a\nb\nc", false],
    ["a.c", "", "a\nc", false],
    ["a.c", "", "a\rc", false],
    ["a.c", "s", "a\nc", true],
    ["a[^]c", "", "a\nc", true],
    ["^\\u00e9$", "", "é", true],
    ["^\\u{1F600}$", "u", "😀", true],
    ["^\\uD83D\\uDE00$", "", "😀", true],
    ["^.$", "u", "😀", true],
    ["\\s", "", "\u00a0", true],
    ["^\\S+$", "", "a\u2003b", false],
    ["^[\\s]$", "", "\u3000", true],
    ["^(?<year>\\d{4})-\\d{2}$", "", "2026-11", true],
    ["\\bfoo\\b", "g", "a foo b", true],
    ["^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$", "i", "Someone@Example.org", true],
    ["\\/usr\\/bin", "", "/usr/bin/env", true],
  ])("/%s/%s on %j -> %s", (source, flags, text, expected) => {
    expect(compile(source, flags).test(text)).toBe(expected);
  });

  it("is stateless across calls even with the g flag (unlike RegExp)", () => {
    const re = compile("a", "g");
    expect([re.test("a"), re.test("a"), re.test("a")]).toEqual([true, true, true]);
  });

  it("replaces every match literally ($1 is not expanded)", () => {
    expect(compile("k-\\d+", "g").replaceAll("k-1 and k-22", "[$1]")).toBe("[$1] and [$1]");
  });

  it("parses /source/flags", () => {
    const re = compileSlashed("/^SECRET-[0-9]+$/i");
    expect(re.source).toBe("^SECRET-[0-9]+$");
    expect(re.flags).toBe("i");
    expect(re.test("secret-42")).toBe(true);
    expect(() => compileSlashed("SECRET")).toThrow(RegexError);
  });

  it.each([
    ["([", "", /missing closing/],
    ["(a)\\1", "", /backreferences/],
    ["(?<n>a)\\k<n>", "", /backreferences/],
    ["a(?=b)", "", /lookahead/],
    ["a(?!b)", "", /lookahead/],
    ["(?<=a)b", "", /lookbehind/],
    ["(?<!a)b", "", /lookbehind/],
    ["a{1001}", "", /repeat/],
    ["(?:(?:a{100}){100}){100}", "", /repeat/],
    ["a", "y", /flag "y"/],
    ["a", "ii", /twice/],
    ["\\uD83D", "", /lone surrogate/],
    ["\\u12", "", /four hex digits/],
    ["[]", "", /empty class/],
    ["a\\", "", /lone backslash/],
  ])("refuses /%s/%s with a clear reason", (source, flags, reason) => {
    let err: unknown;
    try {
      compile(source, flags);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RegexError);
    expect((err as RegexError).reason).toMatch(reason);
    expect((err as RegexError).message).toContain("invalid regular expression");
  });

  it("refuses an over-long pattern", () => {
    expect(() => compile("a".repeat(MAX_REGEX_SOURCE_CHARS + 1))).toThrow(/at most/);
  });

  it("runs catastrophic-backtracking patterns in linear time", () => {
    // With RegExp, 30 bytes against ^(a+)+$ take seconds; a megabyte must still be quick here. The
    // bound is generous (a loaded 2-core machine): a backtracking engine would not finish at all.
    const text = "a".repeat(1 << 20) + "!";
    const started = performance.now();
    expect(compile("^(a+)+$").test(text)).toBe(false);
    expect(compile("^(a|a)*$").test(text)).toBe(false);
    expect(compile("^(\\w+\\s?)*$").test(text)).toBe(false);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
