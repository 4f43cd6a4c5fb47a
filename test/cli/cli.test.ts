import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../dist/src/cli/main.js";
import { BIN, EXAMPLE_SKILLS, ROOT, tempDir, writeSkill } from "../helpers.js";

let ws: string;
/** The CLI in this process (what bin/skillbox.js runs), from the given folder; output captured. */
async function skillbox(args: string[], cwd = ws) {
  const out: string[] = [];
  const err: string[] = [];
  const before = process.cwd();
  process.chdir(cwd);
  try {
    const code = await main(args, { out: (s) => out.push(s + "\n"), err: (s) => err.push(s + "\n") });
    return { code, out: out.join(""), err: err.join("") };
  } finally {
    process.chdir(before);
  }
}
/** The real executable, where the process itself matters (exit status, stdout/stderr split). */
function bin(args: string[], cwd = ws) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const NO_STACK = /^\s+at .+:\d+:\d+\)?$/m;

beforeAll(() => {
  ws = tempDir();
  mkdirSync(join(ws, "notes"));
  writeFileSync(join(ws, "notes", "a.md"), "hello sandbox\n");
  const skills = join(ws, "skills");
  mkdirSync(skills);
  writeSkill(skills, "fails", "", { "index.js": "export default async () => { throw new Error('boom'); };" });
  writeSkill(skills, "notes", 'permissions: { files: [{ path: "${workspace}/notes/**", access: [read, list] }] }\n', {
    "index.js": "export default async (i, ctx) => ctx.fs.list(ctx.env.workspace + '/notes');",
  });
  writeSkill(skills, "broken", "limits:\n  memoryMb: many\n", { "index.js": "export default async () => 1;" });
  writeFileSync(join(ws, "bad.policy.yaml"), "version: 1\ntrust:\n  untrusted:\n    limits: { memoryMb: -1 }\n");
});

describe("skillbox CLI", () => {
  it("run: prints the output, exit 0", async () => {
    const r = await skillbox(["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input", '{"text":"a b a"}']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ words: 3 });
  });

  it("run --json: exactly one CallResult on stdout", async () => {
    const r = await skillbox(["run", "notes", "--trust", "user-verified", "--json", "--session", "s9"]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ ok: true, output: ["a.md"], attempts: 1, fallback: null });
  });

  it("run --input-file: reads the input from a file", async () => {
    writeFileSync(join(ws, "input.json"), '{"text": "one two two"}\n');
    const r = await skillbox(["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input-file", "input.json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ words: 3 });
  });

  it.each([
    ["a missing --input-file", ["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input-file", "nope.json"], /cannot read --input-file nope\.json: ENOENT/],
    ["an --input-file that is a folder", ["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input-file", "notes"], /cannot read --input-file notes/],
    ["an --input-file that is not JSON", ["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input-file", "notes/a.md"], /not valid JSON/],
    ["both --input and --input-file", ["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input", "{}", "--input-file", "input.json"], /--input or --input-file, not both/],
  ])("%s: exit 2 with a clear message", async (_what, args, message) => {
    const r = await skillbox(args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(NO_STACK);
  });

  it.each([
    ["a skill that throws", ["run", "fails"], 1, /E_SKILL_ERROR/],
    ["an unknown flag", ["run", "fails", "--frobnicate"], 2, /Unknown option '--frobnicate'/],
    ["bad JSON input", ["run", "fails", "--input", "{nope"], 2, /--input is not valid JSON/],
    ["an unknown trust level", ["run", "fails", "--trust", "root"], 2, /--trust must be one of/],
    ["a missing skill", ["run", "nope"], 2, /E_SKILL_NOT_FOUND/],
    ["a broken manifest", ["run", "broken"], 2, /E_MANIFEST_INVALID.*skill\.yaml:5: limits\.memoryMb/s],
    ["invalid input", ["run", "word-stats", "--skills", EXAMPLE_SKILLS, "--input", '{"text": 5}'], 2, /E_INPUT_INVALID/],
    ["an invalid policy", ["run", "fails", "--policy", "bad.policy.yaml"], 2, /E_POLICY_INVALID.*bad\.policy\.yaml:4: trust\.untrusted\.limits\.memoryMb/s],
    ["a refused skill", ["run", "notes"], 3, /E_PERMISSION_DENIED: notes needs read access to \$\{workspace\}\/notes\/\*\*, which trust level "untrusted" does not allow/],
    ["no command", [], 2, /Usage:/],
    ["an unknown command", ["explode"], 2, /unknown command "explode"/],
  ] as const)("%s: exit $2, a clear message, no stack trace", async (_what, args, code, message) => {
    const r = await skillbox([...args]);
    expect(r.code).toBe(code);
    expect(r.err + r.out).toMatch(message);
    expect(r.err).not.toMatch(NO_STACK);
  });

  it("validate: names file, field and line; exit 2 when anything is invalid", async () => {
    const r = await skillbox(["validate", "skills", "bad.policy.yaml"]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/✔ .*fails/);
    expect(r.out).toMatch(/✖ .*broken\n\s+.*broken\/skill\.yaml:5: limits\.memoryMb: /);
    expect(r.out).toMatch(/bad\.policy\.yaml:4: trust\.untrusted\.limits\.memoryMb/);
    expect((await skillbox(["validate", EXAMPLE_SKILLS])).code).toBe(0);
  });

  it("list and tools show what each trust level may run", async () => {
    const list = JSON.parse((await skillbox(["list", "--skills", EXAMPLE_SKILLS, "--json"])).out) as Array<{ name: string; allowedAt: string[] }>;
    expect(list.find((s) => s.name === "read-notes")?.allowedAt).toEqual(["user-verified", "trusted", "system"]);
    const untrusted = JSON.parse((await skillbox(["tools", "--format", "openai", "--skills", EXAMPLE_SKILLS])).out) as Array<{ type: string; function: { name: string; parameters: unknown } }>;
    expect(untrusted.every((t) => t.type === "function" && typeof t.function.parameters === "object")).toBe(true);
    expect(untrusted.map((t) => t.function.name)).not.toContain("read-notes");
    const trusted = JSON.parse((await skillbox(["tools", "--format", "anthropic", "--trust", "trusted", "--skills", EXAMPLE_SKILLS])).out) as Array<{ name: string; input_schema: unknown }>;
    expect(trusted.map((t) => t.name)).toContain("write-report");
    const mcp = JSON.parse((await skillbox(["tools", "--format", "mcp", "--trust", "trusted", "--skills", EXAMPLE_SKILLS])).out) as Array<{
      name: string;
      inputSchema: unknown;
      annotations: Record<string, boolean>;
    }>;
    expect(mcp.find((t) => t.name === "read-notes")?.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: false });
  });

  it("audit verify and tail read the log the runs wrote", async () => {
    const v = await skillbox(["audit", "verify"]);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/chain intact/);
    const t = await skillbox(["audit", "tail", "-n", "50"]);
    expect(t.out).toMatch(/DENIED .*notes by cli \(untrusted\)/);
  });

  it("the package's bin runs from the repository root too", () => {
    const r = bin(["list"], ROOT);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/word-stats/);
  });

  it.each([
    ["a skill that fails at run time", ["run", "fails", "--json"], 1],
    ["a bad request", ["run", "fails", "--input", "{nope"], 2],
    ["a refusal by policy", ["run", "notes"], 3],
  ] as const)("the bin's exit status is the documented code: %s exits $2, no stack trace", (_what, args, code) => {
    const r = bin([...args]);
    expect(r.code).toBe(code);
    expect(r.err).not.toMatch(NO_STACK);
  });
});
