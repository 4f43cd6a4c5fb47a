import { describe, expect, it } from "vitest";
import { escapeControl, escapeDeep, terminalSafeJson } from "../../dist/src/util/terminal.js";

describe("escapeControl", () => {
  it.each([
    ["plain text", "plain text"],
    ["a\u001b[31mred", "a\\x1b[31mred"],
    ["osc\u001b]52;c;aGk=\u0007", "osc\\x1b]52;c;aGk=\\x07"],
    ["c1\u009b2J", "c1\\x9b2J"],
    ["line\r\nnext\ttab", "line\\r\\nnext\\ttab"],
    ["del\u007f", "del\\x7f"],
    ["bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066"],
    ["ünïcödé → ✔", "ünïcödé → ✔"],
  ])("%j → %j", (input, expected) => {
    expect(escapeControl(input)).toBe(expected);
  });

  it("terminalSafeJson keeps the value and escapes what JSON leaves raw", () => {
    const v = { m: "x\u009b\u202ey\u001b" };
    const json = terminalSafeJson(JSON.stringify(v));
    expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(json)).toEqual(v);
  });

  it("escapeDeep escapes keys and values at every depth, and stops at a bounded depth", () => {
    expect(escapeDeep({ "k\u001b": ["v\u001b", { x: "\u0007" }] })).toEqual({ "k\\x1b": ["v\\x1b", { x: "\\x07" }] });
    let deep: unknown = "\u001b";
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(() => escapeDeep(deep)).not.toThrow();
  });
});
