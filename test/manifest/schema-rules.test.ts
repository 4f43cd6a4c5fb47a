import { describe, expect, it } from "vitest";
import { builtinIssues } from "../../dist/src/policy/load.js";
import { jsonSchemaOf } from "../../dist/src/cli/schema-command.js";
import { main } from "../../dist/src/cli/main.js";
import { breadthOf } from "../../dist/src/manifest/breadth.js";
import { DEFAULT_CEILINGS, parseManifest, parsePolicy, ValidationError } from "../../dist/src/index.js";

const manifest = (extra: string) => `name: a\nversion: 1.0.0\ndescription: d\n${extra}`;
const issuesOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.issues.map((i) => `${i.field}: ${i.message}`);
    throw err;
  }
  return [];
};

describe("one breadth check for manifests and policies: matching, not spelling", () => {
  it.each([
    ["/", "file-system"],
    ["/**", "file-system"],
    ["**", "file-system"],
    ["**/*", "file-system"],
    ["/*", "file-system"],
    ["/*/**", "file-system"],
    ["/{etc,usr}/**", "file-system"],
    ["${home}", "home"],
    ["${home}/**", "home"],
    ["${home}/.*/**", "home"],
    ["${workspace}/**", null],
    ["${workspace}/notes/**/*.md", null],
    ["${tmp}/**", null],
    ["${skill}/data/**", null],
    ["${home}/projects/app/**", null],
    ["/usr/share/dict/**", null],
  ])("%s → %s", (pattern, breadth) => {
    expect(breadthOf(pattern)).toBe(breadth);
  });

  it.each(["/**", "**/*", "/*/**", "${home}/**", "/{etc,home}/**"])("a manifest asking for %s is refused, naming the field", (path) => {
    const issues = issuesOf(() => parseManifest(manifest(`permissions: { files: [{ path: "${path}", access: [read] }] }\n`), "skill.yaml"));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^permissions\.files\[0\]\.path: .*grants far more than a skill needs/);
  });

  it.each(["**/*", "/*/**", "/{etc,usr}/**"])("a policy giving %s to a level below system is refused; system may have it", (path) => {
    const policy = (level: string) => `version: 1\ntrust:\n  ${level}:\n    files: [{ path: "${path}", access: [read] }]\n`;
    expect(issuesOf(() => parsePolicy(policy("trusted"), "p.yaml"))).toEqual([`trust.trusted.files[0].path: "${path}" gives trust level trusted the whole file system; only "system" may have that`]);
    expect(issuesOf(() => parsePolicy(policy("system"), "p.yaml"))).toEqual([]);
  });
});

describe("variables, versions, one-of rules", () => {
  it("an unknown ${var} in fallback.command is refused at load, naming the variable", () => {
    const issues = issuesOf(() => parseManifest(manifest('fallback: { command: ["/bin/echo", "${wrkspace}/out"] }\n'), "skill.yaml"));
    expect(issues).toEqual(["fallback.command[1]: uses the unknown variable ${wrkspace}; known: ${workspace}, ${home}, ${skill}, ${tmp}"]);
    expect(issuesOf(() => parseManifest(manifest('fallback: { command: ["/bin/echo", "${workspace}/out", "${tmp}"] }\n'), "skill.yaml"))).toEqual([]);
  });

  it("an unknown ${var} in a path names the variable", () => {
    expect(issuesOf(() => parseManifest(manifest('permissions: { files: [{ path: "${secrets}/x", access: [read] }] }\n'), "skill.yaml"))).toEqual([
      "permissions.files[0].path: uses the unknown variable ${secrets}; known: ${workspace}, ${home}, ${skill}, ${tmp}",
    ]);
  });

  it("version: 1.0 (a YAML number) is refused with advice to quote it", () => {
    const issues = issuesOf(() => parseManifest("name: a\nversion: 1.0\ndescription: d\n", "skill.yaml"));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^version: must be a quoted version string such as "1\.0\.0", got the number 1/);
    expect(issuesOf(() => parsePolicy("version: 2.5\n", "p.yaml"))[0]).toMatch(/^version: must be 1 or a quoted label/);
  });

  it("windows and filters are unions: a precise issue when the shape is clear, the rule when it is not", () => {
    const p = (yaml: string) => issuesOf(() => parsePolicy(`version: 1\n${yaml}`, "p.yaml"));
    expect(p('windows: [{ allow: { hours: "9-18" } }]\n')).toEqual(['windows[0].allow.hours: must look like "09:00-18:00"']);
    expect(p('windows: [{ name: w, allow: { hours: "09:00-18:00" }, deny: { from: "2026-01-01T00:00", to: "2026-01-02T00:00" } }]\n')).toEqual([
      "windows[0]: a window has exactly one of allow or deny",
    ]);
    expect(p("windows: [{ name: w }]\n")).toEqual(["windows[0]: a window has exactly one of allow or deny"]);
    expect(p('filters: { rules: [{ name: x, pattern: "/a(/" }] }\n')[0]).toMatch(/^filters\.rules\[0\]\.pattern: invalid regular expression/);
    expect(p('filters: { rules: [{ name: x, pattern: "/a/", terms: [b] }] }\n')).toEqual(["filters.rules[0]: a filter has exactly one of pattern or terms"]);
    expect(p('filters: { rules: [{ name: x, terms: [secret] }] }\nwindows: [{ deny: { from: "2026-01-01T00:00", to: "2026-01-02T00:00" } }]\n')).toEqual([]);
  });
});

describe("built-in defaults and the JSON Schema", () => {
  it("the built-in ceilings, deny rules and bin path pass the policy schema (checked at startup too)", () => {
    expect(builtinIssues()).toEqual([]);
    // The same check refuses a built-in-shaped ceiling that a policy file could not contain.
    const broken = { ...DEFAULT_CEILINGS, trusted: { ...DEFAULT_CEILINGS.trusted, files: [{ path: "/*/**", access: ["read"] }] } };
    expect(issuesOf(() => parsePolicy(JSON.stringify({ version: 1, trust: broken }), "p.yaml"))).toHaveLength(1);
  });

  it("every manifest and policy field is described in the JSON Schema", () => {
    const undocumented: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (!node || typeof node !== "object") return;
      const n = node as Record<string, unknown>;
      for (const [k, v] of Object.entries((n["properties"] as Record<string, Record<string, unknown>>) ?? {})) {
        if (typeof v["description"] !== "string" || v["description"] === "") undocumented.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
      }
      for (const key of ["items", "additionalProperties"]) walk(n[key], `${path}[]`);
      for (const key of ["anyOf", "oneOf"]) if (Array.isArray(n[key])) for (const b of n[key]) walk(b, path);
    };
    walk(jsonSchemaOf("manifest"), "manifest");
    walk(jsonSchemaOf("policy"), "policy");
    expect(undocumented).toEqual([]);
  });

  it("`skillbox schema manifest|policy` prints the JSON Schema; anything else is a usage error", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
    expect(await main(["schema", "manifest"], io)).toBe(0);
    const schema = JSON.parse(out.join("\n")) as { $schema: string; properties: Record<string, unknown>; additionalProperties: unknown };
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["name", "version", "permissions", "limits", "retry", "fallback"]));
    expect(schema.additionalProperties).toBe(false);
    out.length = 0;
    expect(await main(["schema", "policy"], io)).toBe(0);
    expect(Object.keys((JSON.parse(out.join("\n")) as { properties: object }).properties)).toEqual(expect.arrayContaining(["trust", "deny", "windows", "filters"]));
    expect(await main(["schema", "nope"], io)).toBe(2);
    expect(err.join("\n")).toMatch(/give one of manifest, policy/);
  });
});
