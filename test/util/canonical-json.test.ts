import { describe, expect, it } from "vitest";
import { canonicalDigest, canonicalJson, CanonicalJsonError } from "../../dist/src/util/canonical-json.js";
import { jsonDepth, jsonTextDepth } from "../../dist/src/util/json-depth.js";

const nest = (levels: number): unknown => {
  let v: unknown = "leaf";
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v };
  return v;
};

describe("canonical JSON and digests, bounded", () => {
  it.each([
    [{ b: 1, a: [true, null, "x"] }, '{"a":[true,null,"x"],"b":1}'],
    [{ z: { y: 1, x: 2 }, a: undefined }, '{"z":{"x":2,"y":1}}'],
    [[undefined, 1], "[null,1]"],
    ["é\n", '"é\\n"'],
    [{}, "{}"],
    [[], "[]"],
  ])("%j -> %s", (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });

  it("equal values in any key order give one digest", () => {
    expect(canonicalDigest({ a: 1, b: { c: 2, d: 3 } })).toBe(canonicalDigest({ b: { d: 3, c: 2 }, a: 1 }));
    expect(canonicalDigest({ a: 1 })).not.toBe(canonicalDigest({ a: 2 }));
  });

  it("matches JSON.stringify of the key-sorted value (digests stored before stay valid)", () => {
    const v = { b: [1, { y: "2", x: [3] }], a: "s", c: { e: null, d: false } };
    expect(canonicalJson(v)).toBe('{"a":"s","b":[1,{"x":[3],"y":"2"}],"c":{"d":false,"e":null}}');
  });

  it("refuses values nested past the bound, and cycles, without touching the call stack", () => {
    expect(() => canonicalJson(nest(3500))).toThrow(CanonicalJsonError);
    expect(() => canonicalJson(nest(100_000))).toThrow(CanonicalJsonError);
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(() => canonicalDigest(cyclic)).toThrow(CanonicalJsonError);
    expect(canonicalJson(nest(63))).toContain("leaf");
  });

  it("measures depth iteratively, of values and of JSON text", () => {
    expect(jsonDepth({ a: [1, { b: 2 }] })).toBe(3);
    expect(jsonDepth("x")).toBe(0);
    expect(jsonDepth(nest(100_000))).toBe(Infinity);
    expect(jsonTextDepth('{"a":"[[[[","b":[{}]}')).toBe(3);
    expect(jsonTextDepth("[".repeat(70) + "]".repeat(70))).toBe(Infinity);
    expect(jsonTextDepth('"\\"[["')).toBe(0);
  });
});
