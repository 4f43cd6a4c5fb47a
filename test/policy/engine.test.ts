import { describe, expect, it } from "vitest";
import { parseManifest, parsePolicy } from "../../dist/src/index.js";
import { inputDigest } from "../../dist/src/policy/engine/approvals.js";
import { applyFilters, compileFilters } from "../../dist/src/policy/engine/filters.js";
import { bucketKey, ruleIds } from "../../dist/src/policy/engine/rate.js";
import { windowAllows } from "../../dist/src/policy/engine/windows.js";
import { matches } from "../../dist/src/policy/engine/match.js";
import { diffPolicies } from "../../dist/src/policy/engine/diff.js";
import { generateSigningKey, parseSigningKey, signSkill, verifySkillSignature } from "../../dist/src/manifest/signing.js";

const T = (iso: string) => Date.parse(iso);

// Bucket and approval arithmetic: test/state/store.test.ts runs it against every store.
describe("rate-limit buckets are named by their rule", () => {
  it("an unchanged rule keeps its name across versions; a changed one gets a new bucket; twins stay apart", () => {
    const a = { per: "caller" as const, limit: "5/min" };
    const b = { per: "caller" as const, limit: "6/min" };
    const [a1] = ruleIds([a]);
    const [b2, a2, a3] = ruleIds([b, a, { ...a }]);
    expect(a2).toBe(a1);
    expect(b2).not.toBe(a1);
    expect(a3).not.toBe(a2);
  });
  it("a caller id cannot name another caller+skill pair's bucket", () => {
    expect(bucketKey("caller+skill", "a+skill:b", "c")).not.toBe(bucketKey("caller+skill", "a", "b+skill:c"));
  });
});

describe("approval digests", () => {
  it("ignore key order and refuse input deeper than 64 levels instead of recursing", () => {
    expect(inputDigest({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(inputDigest({ b: [1, { d: 3, c: 2 }], a: 1 }));
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(() => inputDigest(deep)).toThrow(/deeper than 64/);
  });
});

describe("time windows, in their time zone", () => {
  const office = { allow: { days: ["mon", "tue", "wed", "thu", "fri"] as ("mon" | "tue" | "wed" | "thu" | "fri")[], hours: "09:00-18:00", tz: "Europe/Berlin" } };
  const blackout = { deny: { from: "2026-12-24T00:00", to: "2026-12-27T00:00", tz: "UTC" } };
  const night = { allow: { hours: "22:00-06:00", tz: "UTC" } };
  it.each([
    [office, "2026-11-27T08:00:00Z", true], // Fri 09:00 Berlin
    [office, "2026-11-27T07:59:59Z", false], // Fri 08:59:59 Berlin
    [office, "2026-11-27T16:59:59Z", true], // Fri 17:59:59 Berlin
    [office, "2026-11-27T17:00:00Z", false], // Fri 18:00 Berlin
    [office, "2026-11-28T10:00:00Z", false], // Saturday
    [office, "2026-07-03T07:00:00Z", true], // summer time: 09:00 Berlin is 07:00 UTC
    [office, "2026-07-03T06:59:00Z", false],
    [blackout, "2026-12-23T23:59:59Z", true],
    [blackout, "2026-12-24T00:00:00Z", false],
    [blackout, "2026-12-26T23:59:59Z", false],
    [blackout, "2026-12-27T00:00:00Z", true],
    [night, "2026-11-23T23:00:00Z", true],
    [night, "2026-11-23T05:59:00Z", true],
    [night, "2026-11-23T06:00:00Z", false],
  ] as const)("%o at %s -> %s", (w, at, allowed) => {
    expect(windowAllows(w as never, T(at))).toBe(allowed);
  });
  it("a blackout in a zone with an offset starts at local midnight", () => {
    const w = { deny: { from: "2026-12-24T00:00", to: "2026-12-25T00:00", tz: "America/New_York" } };
    expect(windowAllows(w as never, T("2026-12-24T04:59:59Z"))).toBe(true);
    expect(windowAllows(w as never, T("2026-12-24T05:00:00Z"))).toBe(false);
  });
});

describe("content filters never echo what they matched", () => {
  const filters = compileFilters(
    ["private-keys", "cloud-keys", "bearer-tokens"],
    [
      { name: "no-ssn", pattern: "/\\b\\d{3}-\\d{2}-\\d{4}\\b/", on: ["input", "output"], action: "redact" },
      { name: "codenames", terms: ["Project Falcon"], on: ["output"], action: "log" },
    ],
  );
  it.each([
    ["an AWS access key", { note: "key AKIAIOSFODNN7EXAMPLE here" }, "cloud-keys"],
    ["a private key", { pem: "-----BEGIN RSA PRIVATE KEY-----\nMIIB...\n-----END RSA PRIVATE KEY-----" }, "private-keys"],
    ["a bearer token", { h: ["Authorization: Bearer abcdefghijklmnop.qrstu"] }, "bearer-tokens"],
  ])("blocks %s", (_w, value, name) => {
    const r = applyFilters(filters, "input", value);
    expect(r.blocked).toBe(name);
    expect(JSON.stringify(r.hits)).not.toMatch(/AKIA|MIIB|abcdefghijklmnop/);
  });
  it("redacts where the rule says, only at its stages; logs terms case-insensitively", () => {
    expect(applyFilters(filters, "input", { a: "ssn 123-45-6789 ok" })).toEqual({ value: { a: "ssn [redacted:no-ssn] ok" }, hits: [{ filter: "no-ssn", action: "redact" }] });
    expect(applyFilters(filters, "request", "ssn 123-45-6789").value).toBe("ssn 123-45-6789");
    expect(applyFilters(filters, "output", ["about project falcon"])).toEqual({ value: ["about project falcon"], hits: [{ filter: "codenames", action: "log" }] });
    expect(applyFilters(filters, "output", { clean: "nothing here" }).hits).toEqual([]);
  });
});

describe("signed skills", () => {
  const files = new Map([["index.js", "export default async () => 1;"]]);
  const manifestText = "name: s\nversion: 1.0.0\ndescription: d\n";
  const { privatePem, publicSpki } = generateSigningKey();
  const ed = parseSigningKey(privatePem, "release");
  const sig = JSON.stringify(signSkill(manifestText, files, ed));
  it.each([
    ["valid", { manifestText, files, signature: sig }, { release: publicSpki }, true, /./],
    ["tampered entry", { manifestText, files: new Map([["index.js", "export default async () => 2;"]]), signature: sig }, { release: publicSpki }, false, /changed since it was signed: index\.js/],
    ["tampered manifest", { manifestText: manifestText + "limits: { memoryMb: 512 }\n", files, signature: sig }, { release: publicSpki }, false, /skill\.yaml/],
    ["an added module", { manifestText, files: new Map([...files, ["evil.js", "x"]]), signature: sig }, { release: publicSpki }, false, /evil\.js/],
    ["missing", { manifestText, files, signature: undefined }, { release: publicSpki }, false, /no skill\.sig/],
    ["a key the policy does not pin", { manifestText, files, signature: sig }, { other: generateSigningKey().publicSpki }, false, /does not verify/],
  ])("%s", (_w, skill, keys, valid, why) => {
    const r = verifySkillSignature(skill as never, keys, undefined);
    expect(r.valid).toBe(valid);
    if (!r.valid) expect(r.reason).toMatch(why);
  });
  it("HMAC with the shared key; refused without it or with another", () => {
    const h = JSON.stringify(signSkill(manifestText, files, parseSigningKey("a-shared-secret-of-length")));
    expect(verifySkillSignature({ manifestText, files, signature: h } as never, {}, "a-shared-secret-of-length").valid).toBe(true);
    expect(verifySkillSignature({ manifestText, files, signature: h } as never, {}, "another-secret-xxxxxxx").valid).toBe(false);
    expect(verifySkillSignature({ manifestText, files, signature: h } as never, {}, undefined).valid).toBe(false);
  });
});

describe("match and diff", () => {
  const m = parseManifest('name: deploy\nversion: 1.0.0\ndescription: d\npermissions: { files: [{ path: "${workspace}/x/**", access: [read, delete] }] }\n', "s.yaml");
  it.each([
    [undefined, true],
    [{ skill: "deploy" }, true],
    [{ skill: ["a", "b"] }, false],
    [{ trust: "trusted" }, true],
    [{ permission: "files" }, true],
    [{ permission: "process" }, false],
    [{ access: "delete" }, true],
    [{ access: ["write", "create"] }, false],
    [{ skill: "deploy", caller: "bob" }, false],
  ])("match %o -> %s", (match, ok) => {
    expect(matches(match as never, { skill: "deploy", caller: "alice", trust: "trusted", manifest: m })).toBe(ok);
  });
  it("marks widened and narrowed grants", () => {
    const a = parsePolicy(
      'version: "1"\ntrust:\n  user-verified: { files: [{ path: "${workspace}/**", access: [read] }] }\nrateLimits: [{ limit: 10/min }]\ndeny: { files: ["**/secret/**"] }\n',
      "a.yaml",
    );
    const b = parsePolicy(
      'version: "2"\ntrust:\n  user-verified: { files: [{ path: "${workspace}/**", access: [read, write] }], limits: { timeoutMs: 500 } }\napprovals: [{ match: { access: delete } }]\n',
      "b.yaml",
    );
    const d = diffPolicies(a, b).map((l) => `${l.effect} ${l.where} ${l.detail}`);
    expect(d).toContain("widened trust.user-verified.files ${workspace}/**: + write");
    expect(d).toContain("narrowed trust.user-verified.limits.timeoutMs 10000 → 500");
    expect(d).toContain("widened deny.files **/secret/**");
    expect(d).toContain('widened rateLimits {"per":"caller","limit":"10/min"}');
    expect(d.some((l) => l.startsWith("narrowed approvals"))).toBe(true);
  });
});
