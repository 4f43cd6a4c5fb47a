import { describe, expect, it } from "vitest";
import { builtinPolicy, DEFAULT_CEILINGS, parsePolicy, ValidationError } from "../../dist/src/index.js";

function issuesOf(text: string) {
  try {
    parsePolicy(text, "skillbox.policy.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe("E_POLICY_INVALID");
    return (err as ValidationError).issues;
  }
  throw new Error("policy was accepted");
}

describe("policy files", () => {
  it("override the built-in ceilings level by level", () => {
    const p = parsePolicy(`version: 1\ntrust:\n  untrusted:\n    limits: { memoryMb: 16 }\n`, "p.yaml");
    expect(p.ceilings.untrusted.limits.memoryMb).toBe(16);
    expect(p.ceilings.untrusted.limits.timeoutMs).toBe(DEFAULT_CEILINGS.untrusted.limits.timeoutMs);
    expect(p.ceilings["user-verified"]).toEqual(DEFAULT_CEILINGS["user-verified"]);
  });

  it("add deny rules to the built-in ones, never replace them", () => {
    const p = parsePolicy(`version: 1\ndeny:\n  files: ["**/private/**"]\n`, "p.yaml");
    expect(p.deny.files).toEqual([...builtinPolicy().deny.files, "**/private/**"]);
  });

  it("get a version from their content hash and label", () => {
    expect(parsePolicy(`version: "2026-11"\n`, "p.yaml").version).toMatch(/^2026-11@[0-9a-f]{12}$/);
  });

  it("report every problem at once with file, field and line", () => {
    const issues = issuesOf(`version: 1\ntrust:\n  untrusted:\n    files:\n      - { path: "relative/**", access: [read, fly] }\n  superuser: {}\n`);
    const fields = issues.map((i) => i.field);
    expect(fields).toContain("trust.untrusted.files[0].path");
    expect(fields).toContain("trust.untrusted.files[0].access[1]");
    expect(issues.every((i) => i.file === "skillbox.policy.yaml")).toBe(true);
    expect(issues.find((i) => i.field === "trust.untrusted.files[0].path")?.line).toBe(5);
  });

  it("report invalid policy-engine rules with field and line", () => {
    const issues = issuesOf(
      `version: 1\nrateLimits:\n  - { limit: 30/minute }\nwindows:\n  - allow: { hours: "9-5", tz: Mars/Olympus }\nfilters:\n  rules:\n    - { name: bad, pattern: "/(unclosed/" }\nexpect:\n  - { skill: s, trust: root, need: { files: /x, access: read }, decision: allow }\n`,
    );
    const byField = Object.fromEntries(issues.map((i) => [i.field, i.line]));
    expect(byField).toMatchObject({ "rateLimits[0].limit": 3, "windows[0].allow.hours": 5, "windows[0].allow.tz": 5, "filters.rules[0].pattern": 8, "expect[0].trust": 10 });
  });

  it("refuse a whole-file-system ceiling below system", () => {
    const issues = issuesOf(`version: 1\ntrust:\n  trusted:\n    files: [{ path: "/**", access: [read] }]\n`);
    expect(issues[0]?.field).toBe("trust.trusted.files[0].path");
  });

  it.each([
    ["duplicate keys", "version: 1\nversion: 2\n"],
    ["aliases (expansion bombs)", "version: 1\ndeny:\n  files: &a [x]\n  network: *a\n"],
    ["custom tags", "version: !!js/function 'return 1'\n"],
    ["broken YAML", "version: [1\n"],
  ])("refuse %s", (_what, text) => {
    expect(issuesOf(text).length).toBeGreaterThan(0);
  });
});
