import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BIN, tempDir, writeSkill } from "../helpers.js";

// The CLI as people use it: help that never runs anything, suggestions for typos, one JSON
// object with --json whatever happens, stdin input, defaults that follow --workspace, signals.
let ws: string;
let elsewhere: string;
function skillbox(args: string[], options: { cwd?: string; input?: string } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ws, encoding: "utf8", timeout: 30_000, ...(options.input !== undefined ? { input: options.input } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const NO_STACK = /^\s+at .+:\d+:\d+\)?$/m;

beforeAll(() => {
  ws = tempDir();
  elsewhere = tempDir();
  const skills = join(ws, "skills");
  mkdirSync(skills);
  writeSkill(skills, "echo", "", { "index.js": "export default async (input) => ({ got: input });" });
  writeSkill(skills, "slow", "", { "index.js": "export default async () => { await new Promise((r) => setTimeout(r, 1500)); return { slept: true }; };" });
  writeFileSync(join(ws, "bad.policy.yaml"), "version: 1\ntrust:\n  untrusted:\n    limits: { memoryMb: -1 }\n");
});

describe("--help never runs anything", () => {
  it.each([["list"], ["run"], ["mcp"], ["validate"], ["tools"], ["audit"], ["approvals"], ["policy"], ["sign"], ["keygen"]])(
    "%s --help prints that command's help with examples, exit 0",
    (command) => {
      const r = skillbox([command, "--help"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^skillbox ${command}`));
      expect(r.out).toMatch(/Examples?:/);
    },
  );

  it("list --help does not list; mcp --help starts no server (returns at once with stdin open)", () => {
    expect(skillbox(["list", "--help"]).out).not.toMatch(/echo/);
    const r = spawnSync(process.execPath, [BIN, "mcp", "--help"], { cwd: ws, encoding: "utf8", timeout: 10_000, stdio: ["pipe", "pipe", "pipe"] });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^skillbox mcp/);
  });

  it("--version prints the package version", () => {
    const r = skillbox(["--version"]);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(JSON.parse(readFileSync(join(BIN, "..", "..", "package.json"), "utf8")).version);
  });
});

describe("did you mean", () => {
  it.each([
    ["a command", ["lsit"], /unknown command "lsit" \(did you mean "list"\?\)/],
    ["a flag", ["run", "echo", "--inptu", "{}"], /Unknown option '--inptu' \(did you mean --input\?\)/],
    ["a trust level", ["run", "echo", "--trust", "trustd"], /got "trustd" \(did you mean "trusted"\?\)/],
    ["a skill name", ["run", "ecko"], /no skill named "ecko".*\(did you mean "echo"\?\)/s],
    ["a tools format", ["tools", "--format", "opnai"], /did you mean "openai"/],
  ] as const)("%s", (_what, args, message) => {
    const r = skillbox([...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(NO_STACK);
  });
});

describe("--json: exactly one JSON object on stdout, whatever happens", () => {
  it.each([
    ["bad --input JSON", ["run", "echo", "--input", "{nope", "--json"], "E_INPUT_INVALID"],
    ["a bad --trust", ["run", "echo", "--trust", "root", "--json"], "E_INPUT_INVALID"],
    ["an unknown flag", ["run", "echo", "--frobnicate", "--json"], "E_INPUT_INVALID"],
    ["an invalid policy", ["run", "echo", "--policy", "bad.policy.yaml", "--json"], "E_POLICY_INVALID"],
    ["a missing skill", ["run", "nope", "--json"], "E_SKILL_NOT_FOUND"],
    ["an extra argument", ["run", "echo", "extra", "--json"], "E_INPUT_INVALID"],
  ] as const)("%s → a CallResult-shaped { ok: false, error }", (_what, args, code) => {
    const r = skillbox([...args]);
    expect(r.code).toBe(2);
    const lines = r.out.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ ok: false, error: { code, retryable: false } });
  });
});

describe("arguments", () => {
  it.each([
    ["mcp", ["mcp", "--trust", "user-verified", "extra"]],
    ["list", ["list", "extra"]],
    ["tools", ["tools", "--format", "mcp", "user-verified"]],
    ["run", ["run", "echo", "{}"]],
  ] as const)("%s refuses an unexpected positional argument", (_what, args) => {
    const r = skillbox([...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unexpected argument/);
  });

  it("--input-file - reads the input from standard input", () => {
    const r = skillbox(["run", "echo", "--input-file", "-", "--json"], { input: '{"from": "stdin"}' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, output: { got: { from: "stdin" } } });
  });

  it("the security log and the state default to --workspace, not the current folder", () => {
    const r = skillbox(["run", "echo", "--workspace", ws, "--json"], { cwd: elsewhere });
    expect(r.code).toBe(0);
    expect(existsSync(join(ws, ".skillbox", "audit.jsonl"))).toBe(true);
    expect(existsSync(join(elsewhere, ".skillbox"))).toBe(false);
  });
});

describe("signals", () => {
  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)(
    "%s during run --json: exit %i and still exactly one JSON object",
    async (signal, exitCode) => {
      const audit = join(tempDir(), "audit.jsonl");
      const child = spawn(process.execPath, [BIN, "run", "slow", "--json", "--audit", audit], { cwd: ws, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (err += d));
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      // Ready when the attempt has started (the log is written as the call goes).
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !(existsSync(audit) && readFileSync(audit, "utf8").includes('"attempt.start"'))) await new Promise((r) => setTimeout(r, 25));
      child.kill(signal);
      expect(await exited).toBe(exitCode);
      const lines = out.trim().split("\n");
      expect(lines, err).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toHaveProperty("ok");
      expect(err).not.toMatch(NO_STACK);
    },
    30_000,
  );
});
