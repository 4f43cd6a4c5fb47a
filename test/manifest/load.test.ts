import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadSkillDir, parseManifest, SkillError, type ValidationError, type SkillHost } from "../../dist/src/index.js";
import { fixture, writeSkill } from "../helpers.js";

function issuesOf(text: string) {
  try {
    parseManifest(text, "skills/x/skill.yaml");
  } catch (err) {
    expect((err as ValidationError).code).toBe("E_MANIFEST_INVALID");
    return (err as ValidationError).issues;
  }
  throw new Error("manifest was accepted");
}

describe("manifests", () => {
  it("apply defaults in one place", () => {
    const m = parseManifest("name: a\nversion: 1.0.0\ndescription: d\n", "skill.yaml");
    expect(m.entry).toBe("index.js");
    expect(m.retry).toEqual({ attempts: 1, initialDelayMs: 100, factor: 2, maxDelayMs: 2000, jitter: true });
    expect(m.permissions).toEqual({ files: [], network: [], process: [] });
  });

  it("report every problem at once, with field paths and lines", () => {
    const issues = issuesOf(
      ["name: Bad_Name", "version: one", "description: d", "permissions:", "  files:", "    - path: notes/**", "      access: [read, destroy]", "limits: { memoryMb: 2 }", "colour: red"].join("\n"),
    );
    const byField = Object.fromEntries(issues.map((i) => [i.field, i.line]));
    expect(byField).toMatchObject({ name: 1, version: 2, "permissions.files[0].path": 6, "permissions.files[0].access[1]": 7, "limits.memoryMb": 8 });
    expect(issues.some((i) => i.field === "" && /colour/.test(i.message))).toBe(true);
  });

  it.each([
    ["an over-broad grant", 'permissions: { files: [{ path: "/**", access: [read] }] }', "permissions.files[0].path"],
    ["a '..' segment", 'permissions: { files: [{ path: "${workspace}/../x", access: [read] }] }', "permissions.files[0].path"],
    ["an unknown variable", 'permissions: { files: [{ path: "${secrets}/x", access: [read] }] }', "permissions.files[0].path"],
    ["an entry outside the folder", "entry: ../other/index.js", "entry"],
    ["a non-object input schema", "input: { type: string }", "input.type"],
    ["a remote $ref", 'input: { type: object, properties: { a: { $ref: "https://evil.example/s.json" } } }', "input"],
    ["itself as fallback", "fallback: { skill: a }", "fallback.skill"],
    ["a command argument pattern list that is not a list", "permissions: { process: [{ command: git, args: log }] }", "permissions.process[0].args"],
  ])("refuse %s", (_what, extra, field) => {
    const issues = issuesOf(`name: a\nversion: 1.0.0\ndescription: d\n${extra}\n`);
    expect(issues.map((i) => i.field)).toContain(field);
  });

  it.each([
    ["duplicate keys", "name: a\nname: b\nversion: 1.0.0\ndescription: d\n"],
    ["an alias bomb", "name: a\nversion: 1.0.0\ndescription: &d x\ninput: { type: object, description: *d }\n"],
    ["a custom tag", "name: !!js/function 'x'\nversion: 1.0.0\ndescription: d\n"],
  ])("refuse unsafe YAML: %s", (_what, text) => {
    expect(issuesOf(text)[0]?.message).toMatch(/^YAML: /);
  });
});

describe("skill folders", () => {
  let host: SkillHost | undefined;
  afterEach(async () => host?.close());

  it("pin the entry with sha256: a changed entry is refused with E_INTEGRITY", () => {
    const fx = fixture();
    const src = "export default async () => 1;\n";
    const hash = createHash("sha256").update(src).digest("hex");
    const dir = writeSkill(fx.skills, "pinned", `sha256: ${hash}\n`, { "index.js": src });
    expect(loadSkillDir(dir).entrySha256).toBe(hash);
    writeFileSync(join(dir, "index.js"), "export default async () => 2;\n");
    expect(() => loadSkillDir(dir)).toThrowError(SkillError);
    try {
      loadSkillDir(dir);
    } catch (err) {
      expect((err as SkillError).code).toBe("E_INTEGRITY");
    }
  });

  it("a broken folder is reported and skipped, the others load; calling it names the problem", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "good", "", { "index.js": "export default async () => 'ok';" });
    writeSkill(fx.skills, "broken", "limits: { memoryMb: lots }\n", { "index.js": "export default async () => 1;" });
    writeSkill(fx.skills, "noentry", "", {});
    const warnings: string[] = [];
    host = await fx.open({ onWarning: (m) => warnings.push(m) });
    expect(host.list().map((s) => s.name)).toEqual(["good"]);
    expect(host.loadProblems.map((p) => p.code).sort()).toEqual(["E_MANIFEST_INVALID", "E_MANIFEST_INVALID"]);
    expect(warnings.join("\n")).toMatch(/broken.*\n.*limits\.memoryMb/);
    const r = await host.call("broken", {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe("E_MANIFEST_INVALID");
    expect((await host.call("good", {})).ok).toBe(true);
  });
});
