import { afterEach, describe, expect, it } from "vitest";
import { parseManifest, type SkillHost } from "../../dist/src/index.js";
import { compileValidator } from "../../dist/src/manifest/json-schema.js";
import { fixture, writeSkill } from "../helpers.js";

// Generous bound for "answers promptly" on a loaded 2-core machine; a backtracking pattern would
// not finish within it at these sizes (it took seconds at 26 bytes).
const PROMPT_MS = 5_000;

const manifest = (schema: string) => `name: s\nversion: 1.0.0\ndescription: d\ninput:\n${schema}\n`;

function issuesOf(text: string): { code: string; issues: { field: string; message: string; line?: number }[] } {
  try {
    parseManifest(text, "/skills/s/skill.yaml");
  } catch (err) {
    return err as never;
  }
  throw new Error("expected the manifest to be refused");
}

describe("schema patterns are compiled at load, on a linear-time engine", () => {
  it("an invalid pattern refuses the manifest with file, field and line", () => {
    const err = issuesOf(manifest(`  type: object\n  properties:\n    q:\n      type: string\n      pattern: "(["`));
    expect(err.code).toBe("E_MANIFEST_INVALID");
    expect(err.issues[0]).toMatchObject({ field: "input.properties.q.pattern", line: 9 });
    expect(err.issues[0]!.message).toMatch(/invalid pattern/);
  });

  it.each([
    ["a backreference", "(a)\\\\1"],
    ["a lookahead", "^(?=a)"],
  ])("%s is refused with the feature named", (_what, pattern) => {
    const err = issuesOf(manifest(`  type: object\n  properties:\n    q: { type: string, pattern: "${pattern}" }`));
    expect(err.issues[0]!.message).toMatch(/not supported/);
  });

  it("patternProperties keys and unknown formats are checked too", () => {
    const err = issuesOf(manifest(`  type: object\n  patternProperties:\n    "([": { type: string }\n  properties:\n    u: { type: string, format: no-such-format }`));
    expect(err.issues.map((i) => i.field).sort()).toEqual(["input.patternProperties.([", "input.properties.u.format"]);
  });

  it("a property named pattern is a property, not a pattern", () => {
    expect(() => parseManifest(manifest(`  type: object\n  properties:\n    pattern: { type: string }\n  examples: [{ pattern: "([" }]`), "f")).not.toThrow();
  });

  it.each([
    ["pattern", { type: "object", properties: { q: { type: "string", pattern: "^(a+)+$" } } }, { q: "a".repeat(200_000) + "!" }, /does not match pattern/],
    ["patternProperties", { type: "object", patternProperties: { "^(a|a)*$": { type: "number" } } }, { ["a".repeat(100_000) + "!"]: "x" }, null],
    ["format: url", { type: "object", properties: { u: { type: "string", format: "url" } } }, { u: "http://" + "a.".repeat(100_000) + "-" }, /format "url"/],
    ["format: json-pointer", { type: "object", properties: { u: { type: "string", format: "json-pointer" } } }, { u: "/".repeat(100_000) + "~" }, /format "json-pointer"/],
  ])("%s: a hostile value is judged in linear time", (_what, schema, value, expected) => {
    const validate = compileValidator(schema, "input");
    const started = performance.now();
    const errors = validate(value);
    expect(performance.now() - started).toBeLessThan(PROMPT_MS);
    if (expected) expect(errors.join("; ")).toMatch(expected);
    else expect(errors).toEqual([]);
  });

  it("keeps pattern semantics: anchored and unanchored, Unicode", () => {
    const validate = compileValidator({ type: "object", properties: { a: { type: "string", pattern: "^[a-z]+$" }, b: { type: "string", pattern: "é" } } }, "input");
    expect(validate({ a: "abc", b: "café" })).toEqual([]);
    expect(validate({ a: "abc1", b: "cafe" })).toHaveLength(2);
  });

  it("formats still accept what they should", () => {
    const validate = compileValidator(
      {
        type: "object",
        additionalProperties: false,
        properties: {
          url: { format: "url" },
          uri: { format: "uri" },
          host: { format: "hostname" },
          ip: { format: "ipv6" },
          id: { format: "uuid" },
          when: { format: "date-time" },
          mail: { format: "email" },
        },
      },
      "input",
    );
    expect(
      validate({
        url: "https://example.org/a?b=c",
        uri: "urn:isbn:0451450523",
        host: "example.org",
        ip: "::1",
        id: "123e4567-e89b-12d3-a456-426614174000",
        when: "2026-11-29T19:00:00Z",
        mail: "a@example.org",
      }),
    ).toEqual([]);
    expect(validate({ url: "ftp:/x", host: "-bad-", ip: "1::2::3", id: "nope" })).toHaveLength(4);
  });

  it("a value nested past 64 levels is refused before the validator walks it", () => {
    const validate = compileValidator({ $ref: "#/$defs/node", $defs: { node: { type: "object", properties: { next: { $ref: "#/$defs/node" } } } } }, "input");
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 600; i++) deep = { next: deep };
    expect(validate(deep).join()).toMatch(/deeper than 64/);
  });

  it("a schema that loops without descending is a problem reported, not a crash", () => {
    const validate = compileValidator({ $ref: "#/$defs/a", $defs: { a: { allOf: [{ $ref: "#/$defs/a" }] } } }, "input");
    expect(validate({}).join()).toMatch(/recurses without end/);
  });
});

describe("the host answers hostile inputs to a hostile schema promptly and stays up", () => {
  let host: SkillHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it("ReDoS pattern, url format and recursive schema: each ends as a CallResult; the next call is served", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "redos", `input:\n  type: object\n  properties:\n    q: { type: string, pattern: "^(a+)+$" }\n    u: { type: string, format: url }\n    n: { $ref: "#" }\n`, {
      "index.js": "export default async () => ({ ok: true });",
    });
    host = await fx.open();
    const started = performance.now();
    const attacks = [{ q: "a".repeat(26) + "!" }, { q: "a".repeat(100_000) + "!" }, { u: "http://" + "-".repeat(36) }];
    for (const input of attacks) {
      const r = await host.call("redos", input, { caller: { trust: "system" } });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("E_INPUT_INVALID");
    }
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 600; i++) deep = { n: deep };
    const r = await host.call("redos", deep, { caller: { trust: "system" } });
    expect(r.ok === false && r.error.code).toBe("E_INPUT_INVALID");
    const ok = await host.call("redos", { q: "aaa" }, { caller: { trust: "system" } });
    expect(ok.ok).toBe(true);
    expect(performance.now() - started).toBeLessThan(4 * PROMPT_MS);
    const ends = (await fx.events()).filter((e) => e["event"] === "call.end");
    expect(ends).toHaveLength(5);
  });
});
