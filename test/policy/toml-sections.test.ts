import { describe, expect, it } from "vitest";
import { DEFAULT_CEILINGS, parsePolicy, ValidationError } from "../../dist/src/index.js";

function issuesOf(text: string, file: string) {
  try {
    parsePolicy(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error("policy was accepted");
}

describe("a policy level overrides the built-in ceiling section by section", () => {
  it("giving trusted a network list keeps its built-in files, process and limits", () => {
    const p = parsePolicy(`version: 1\ntrust:\n  trusted:\n    network: [{ host: 127.0.0.1, scheme: http }]\n`, "p.yaml");
    expect(p.ceilings.trusted.network).toEqual([expect.objectContaining({ host: "127.0.0.1" })]);
    expect(p.ceilings.trusted.files).toEqual(DEFAULT_CEILINGS.trusted.files);
    expect(p.ceilings.trusted.process).toEqual(DEFAULT_CEILINGS.trusted.process);
    expect(p.ceilings.trusted.limits).toEqual(DEFAULT_CEILINGS.trusted.limits);
  });
});

describe("TOML policy files", () => {
  it("load into the same policy as the YAML spelling", () => {
    const yaml = parsePolicy(
      `version: "7"\ntrust:\n  user-verified:\n    limits: { timeoutMs: 500 }\n    network: [{ host: "*.example.com" }]\ndeny:\n  files: ["**/private/**"]\nrateLimits:\n  - { limit: 10/min, match: { trust: untrusted } }\n`,
      "p.yaml",
    );
    const toml = parsePolicy(
      `version = "7"\n\n[trust.user-verified]\nlimits = { timeoutMs = 500 }\nnetwork = [{ host = "*.example.com" }]\n\n[deny]\nfiles = ["**/private/**"]\n\n[[rateLimits]]\nlimit = "10/min"\nmatch = { trust = "untrusted" }\n`,
      "p.toml",
    );
    expect(toml.ceilings).toEqual(yaml.ceilings);
    expect(toml.deny).toEqual(yaml.deny);
    expect(toml.rules.rateLimits).toEqual(yaml.rules.rateLimits);
  });

  it("a syntax error names the file and line", () => {
    const issues = issuesOf(`version = 1\n[trust.untrusted]\nlimits = { memoryMb = \n`, "skillbox.policy.toml");
    expect(issues[0]).toMatchObject({ file: "skillbox.policy.toml", line: 3 });
    expect(issues[0]!.message).toMatch(/^TOML: /);
  });

  it("a schema error names the field and its line, in a table or an inline table", () => {
    const issues = issuesOf(`version = 1\n\n[trust.untrusted]\nlimits = { memoryMb = -1 }\n\n[trust.trusted.limits]\ntimeoutMs = "soon"\n`, "skillbox.policy.toml");
    expect(issues.find((i) => i.field === "trust.untrusted.limits.memoryMb")?.line).toBe(4);
    expect(issues.find((i) => i.field === "trust.trusted.limits.timeoutMs")?.line).toBe(7);
  });

  it("a string where a table belongs is reported as such, not silently accepted", () => {
    const issues = issuesOf(`version = 1\ntrust = "everything"\n`, "p.toml");
    expect(issues.find((i) => i.field === "trust")).toMatchObject({ line: 2 });
  });
});
