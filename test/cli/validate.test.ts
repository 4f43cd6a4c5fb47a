import { spawnSync } from "node:child_process";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, tempDir, writeSkill } from "../helpers.js";

// `skillbox validate` catches what would stop a skill from running, before anyone calls it.
let ws: string;
function skillbox(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ws, encoding: "utf8", timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
type Result = { path: string; ok: boolean; allowedAt?: string[]; issues: { file: string; field: string; message: string; line?: number }[]; notes: string[] };
function results(args: string[]): Result[] {
  return JSON.parse(skillbox(["validate", ...args, "--json"]).out) as Result[];
}

beforeAll(() => {
  ws = tempDir();
  const s = join(ws, "skills");
  mkdirSync(s);
  writeSkill(s, "good", "output: { type: array }\n", {
    "index.js": 'import { twice } from "./lib/util.js";\nexport default async (i) => [twice(1)];',
    "lib/util.js": "export const twice = (n) => n * 2;",
  });
  writeSkill(s, "syntax", "", { "index.js": "export default async () => {\n  return 1 +;\n};" });
  writeSkill(s, "builtin", "", { "index.js": 'import fs from "node:fs";\nexport default async () => typeof fs;' });
  writeSkill(s, "outside", "", { "index.js": 'import x from "../good/index.js";\nexport default async () => x;' });
  writeSkill(s, "missing-module", "", { "index.js": 'import x from "./helper.js";\nexport default async () => x;', "helpers.js": "export default 1;" });
  writeSkill(s, "no-default", "", { "index.js": "export async function run() { return 1; }" });
  writeSkill(s, "typo-type", "input:\n  type: object\n  properties:\n    text: { type: strng }\n", { "index.js": "export default async () => 1;" });
  writeSkill(s, "typo-field", "permisions: {}\nlimits: { timoutMs: 5 }\n", { "index.js": "export default async () => 1;" });
  writeSkill(s, "lost-fallback", "fallback: { skill: god }\n", { "index.js": "export default async () => 1;" });
  writeSkill(s, "needs-notes", 'permissions: { files: [{ path: "${workspace}/notes/**", access: [read] }] }\n', { "index.js": "export default async () => 1;" });
  const dir = writeSkill(s, "renamed", "", { "index.js": "export default async () => 1;" });
  renameSync(dir, join(s, "other-name"));
  writeFileSync(join(ws, "team.policy.toml"), 'version = "t1"\n\n[trust.untrusted]\nfiles = [{ path = "${workspace}/notes/**", access = ["read"] }]\n');
});

describe("skillbox validate, a linter", () => {
  it("passes a sound skill and says which trust levels may run it; notes an output MCP shows wrapped", () => {
    const good = results(["skills/good"])[0]!;
    expect(good).toMatchObject({ ok: true, allowedAt: ["untrusted", "user-verified", "trusted", "system"] });
    expect(good.notes.join()).toMatch(/wrapped as \{ result/);
  });

  it.each([
    ["a syntax error, with its line", "syntax", "entry", /SyntaxError: Unexpected token/, 2],
    ["an import of a Node built-in", "builtin", "import", /import "node:fs": Node built-ins are not available/, undefined],
    ["an import outside the folder", "outside", "import", /points outside the skill's folder/, undefined],
    ["an import of a missing module", "missing-module", "import", /no module helper\.js .*did you mean "helpers\.js"/, undefined],
    ["no default export", "no-default", "entry", /no default export/, undefined],
    ["type: strng", "typo-type", "input.properties.text.type", /unknown JSON Schema type "strng" \(did you mean "string"\?\)/, undefined],
    ["a fallback skill that does not exist", "lost-fallback", "fallback.skill", /no skill named "god".*did you mean "good"/, undefined],
    ["a mistyped manifest field, with a suggestion", "typo-field", "", /unknown field\(s\) "permisions" \(did you mean "permissions"\?\)/, 4],
    ["a mistyped nested field, with a suggestion", "typo-field", "limits", /"timoutMs" \(did you mean "timeoutMs"\?\)/, 5],
    ["a folder name that differs from name", "other-name", "name", /differs from its folder name "other-name"/, undefined],
  ] as const)("refuses %s (exit 2, file and field named)", (_what, dir, field, message, line) => {
    const r = skillbox(["validate", `skills/${dir}`]);
    expect(r.code).toBe(2);
    const [res] = results([`skills/${dir}`]);
    const issue = res!.issues.find((i) => i.field === field);
    expect(issue, JSON.stringify(res)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(issue!.file).toMatch(new RegExp(`skills/${dir}/`));
    if (line !== undefined) expect(issue!.line).toBe(line);
  });

  it("judges trust levels under the policy given (TOML too)", () => {
    expect(results(["skills/needs-notes"])[0]!.allowedAt).toEqual(["user-verified", "trusted", "system"]);
    const both = results(["skills/needs-notes", "team.policy.toml"]);
    const skill = both.find((r) => r.path.includes("needs-notes"));
    const policy = both.find((r) => r.path === "team.policy.toml");
    expect(skill!.allowedAt).toEqual(["untrusted", "user-verified", "trusted", "system"]);
    expect(policy).toMatchObject({ ok: true });
  });
});

describe("skillbox policy show", () => {
  it("prints each level's effective ceilings, section by section, marking what the policy file changed", () => {
    const r = skillbox(["policy", "show", "--policy", "team.policy.toml", "--trust", "untrusted"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/files +\[policy file\] +\$\{workspace\}\/notes\/\*\* \(read\)/);
    expect(r.out).toMatch(/network +\[built-in\] +none/);
    expect(r.out).toMatch(/limits +\[built-in\] +memoryMb 32/);
    expect(r.out).not.toMatch(/^trusted$/m);
  });

  it("--json gives the merged ceilings", () => {
    const r = skillbox(["policy", "show", "--json"]);
    const shown = JSON.parse(r.out) as { source: string; ceilings: Record<string, { network: unknown[] }> };
    expect(shown.source).toBe("built-in");
    expect(shown.ceilings["trusted"]!.network).toEqual([{ host: "*" }]);
  });
});
