import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillHost } from "../../dist/src/index.js";
import { detectBwrap } from "../../dist/src/capabilities/confine.js";
import { readEvents, tempDir, writeSkill } from "../helpers.js";

const bwrap = await detectBwrap();

const RUNNER = `export default async function (input, ctx) {
  try {
    const r = await ctx.exec(input.command, input.args ?? [], input.options ?? {});
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, ms: r.durationMs };
  } catch (err) {
    return { refused: String(err.message) };
  }
}`;

/** Host processes whose command line is exactly these words (to find a grandchild the test started). */
function processesWithArgs(words: string[]): number[] {
  const needle = words.join("\0") + "\0";
  const found: number[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8") === needle) found.push(Number(pid));
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (check()) return true;
    await new Promise((r) => setImmediate(r));
  }
  return check();
}

function workspace(): { root: string; ws: string } {
  const root = tempDir();
  const ws = join(root, "ws");
  mkdirSync(join(ws, "notes"), { recursive: true });
  mkdirSync(join(ws, "secret"));
  mkdirSync(join(ws, ".git", "hooks"), { recursive: true });
  writeFileSync(join(ws, "notes", "a.md"), "note A");
  writeFileSync(join(ws, ".env"), "API_KEY=leaked");
  writeFileSync(join(ws, "secret", "s.txt"), "top secret");
  writeFileSync(join(ws, ".git", "hooks", "pre-commit"), "#!/bin/sh\nexit 0\n");
  symlinkSync(join(ws, ".env"), join(ws, "notes", "env-link"));
  return { root, ws };
}

describe("process arguments that are paths are checked as paths", () => {
  let host: SkillHost;
  let ws: string;
  beforeAll(async () => {
    const w = workspace();
    ws = w.ws;
    const rules = `
    - { command: cat, args: ["/etc/*", { path: "\${workspace}/notes/**", access: [read] }] }`;
    writeFileSync(join(w.root, "policy.yaml"), `version: 1\ntrust:\n  user-verified:\n    files: [ { path: "\${workspace}/**", access: [read, list] } ]\n    process:${rules}\n`);
    writeSkill(join(w.root, "skills"), "reader", `permissions:\n  files:\n    - { path: "\${workspace}/notes/**", access: [read, list] }\n  process:${rules}\n`, { "index.js": RUNNER });
    host = await SkillHost.open({ skillsDir: join(w.root, "skills"), workspace: ws, policy: join(w.root, "policy.yaml"), audit: join(w.root, "audit.jsonl"), workers: 1, onWarning: () => undefined });
  });
  afterAll(() => host.close());
  const run = (args: string[], options: Record<string, unknown> = {}) => host.call("reader", { command: "cat", args, options }, { caller: { id: "t", trust: "user-verified" } });

  it("allows a path inside the argument pattern's folder", async () => {
    const r = await run([join(ws, "notes", "a.md")]);
    expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: "note A" });
    const rel = await run(["a.md"], { cwd: join(ws, "notes") });
    expect(rel.ok && rel.output).toMatchObject({ exitCode: 0, stdout: "note A" });
  });

  it.each([
    ["a .. segment through a glob", () => `/etc/../${ws.slice(1)}/.env`],
    ["a .. segment out of the path pattern's folder", () => `${ws}/notes/../.env`],
    ["a symlink in the folder pointing at a denied file", () => `${ws}/notes/env-link`],
    ["a relative path that leaves the folder", () => "../.env"],
    ["a path outside every pattern", () => `${ws}/secret/s.txt`],
    ["an option where a path is expected", () => "--version"],
  ])("refuses %s", async (_what, arg) => {
    const r = await run([arg()], { cwd: join(ws, "notes") });
    expect(r.ok ? "ok" : `${r.error.code}: ${r.error.message}`).toMatch(/^E_PERMISSION_DENIED/);
    expect(JSON.stringify(r)).not.toMatch(/leaked|top secret/);
  });
});

describe.skipIf(!bwrap.available)("processes are confined by bubblewrap", () => {
  let host: SkillHost;
  let root: string;
  let ws: string;
  let server: Server;
  let port = 0;
  const warnings: string[] = [];
  beforeAll(async () => {
    const w = workspace();
    root = w.root;
    ws = w.ws;
    server = createServer((s) => s.end("reached"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
    writeFileSync(
      join(ws, "skillbox.policy.yaml"),
      [
        "version: 1",
        "trust:",
        "  trusted:",
        "    network: [ { host: '127.0.0.1', scheme: http } ]",
        "    process:",
        "      - { command: cat, args: ['**'] }",
        "      - { command: tee, args: ['**'] }",
        "      - { command: mv, args: ['**'] }",
        "      - { command: bash, args: ['-c', '**'] }",
        "      - { command: bash, args: ['-c', '**'], network: true }",
        "",
      ].join("\n"),
    );
    const skills = join(root, "skills");
    writeSkill(
      skills,
      "tool",
      `permissions:\n  files:\n    - { path: "\${workspace}/notes/**", access: [read] }\n  network: [ { host: "127.0.0.1", scheme: http } ]\n  process:\n    - { command: cat, args: ["**"] }\n    - { command: bash, args: ["-c", "**"] }\n`,
      { "index.js": RUNNER },
    );
    writeSkill(
      skills,
      "writer",
      `permissions:\n  files:\n    - { path: "\${workspace}/**", access: [read, write, create, list] }\n  process:\n    - { command: tee, args: ["**"] }\n    - { command: mv, args: ["**"] }\n    - { command: cat, args: ["**"] }\n`,
      { "index.js": RUNNER },
    );
    writeSkill(skills, "netter", `permissions:\n  process:\n    - { command: bash, args: ["-c", "**"], network: true }\n`, { "index.js": RUNNER });
    host = await SkillHost.open({ skillsDir: skills, workspace: ws, audit: join(root, "audit.jsonl"), workers: 1, onWarning: (m) => warnings.push(m) });
  });
  afterAll(async () => {
    await host.close();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const call = (skill: string, command: string, args: string[], options: Record<string, unknown> = {}) => host.call(skill, { command, args, options }, { caller: { id: "t", trust: "trusted" } });

  it("warns about nothing at start when bwrap works", () => {
    expect(warnings.filter((w) => /unconfined|refused/.test(w))).toEqual([]);
  });

  it("shows the granted folder and nothing else of the workspace", async () => {
    const ok = await call("tool", "cat", [join(ws, "notes", "a.md")]);
    expect(ok.ok && ok.output).toMatchObject({ exitCode: 0, stdout: "note A" });
    for (const outside of [join(ws, "secret", "s.txt"), join(ws, ".env"), join(ws, "skillbox.policy.yaml"), join(root, "audit.jsonl")]) {
      const r = await call("tool", "cat", [outside]);
      expect(r.ok && (r.output as { exitCode: number }).exitCode).not.toBe(0);
      expect(JSON.stringify(r)).not.toMatch(/leaked|top secret|version: 1/);
    }
  });

  it("cannot connect to a loopback server the policy allows for ctx.fetch, unless its rule says network: true", async () => {
    const script = `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3`;
    const r = await call("tool", "bash", ["-c", script]);
    expect(r.ok && (r.output as { stdout: string }).stdout).not.toContain("reached");
    expect(r.ok && (r.output as { exitCode: number }).exitCode).not.toBe(0);
    const allowed = await call("netter", "bash", ["-c", script]);
    expect(allowed.ok && allowed.output).toMatchObject({ exitCode: 0, stdout: "reached" });
  });

  it("cannot write the policy, a git hook or the security log, even with write access to the whole workspace", async () => {
    const policyBefore = readFileSync(join(ws, "skillbox.policy.yaml"), "utf8");
    // (skillbox.policy.toml does not exist: creating it is refused as well)
    for (const target of [join(ws, "skillbox.policy.yaml"), join(ws, "skillbox.policy.toml"), join(ws, ".git", "hooks", "pre-commit"), join(ws, ".git", "hooks", "post-merge")]) {
      const r = await call("writer", "tee", [target], { stdin: "pwned" });
      expect(r.ok && (r.output as { exitCode: number }).exitCode).not.toBe(0);
    }
    // nor move the folder that holds the hooks out of the way
    const mv = await call("writer", "mv", [join(ws, ".git"), join(ws, "git-moved")]);
    expect(mv.ok && (mv.output as { exitCode: number }).exitCode).not.toBe(0);
    expect(readFileSync(join(ws, "skillbox.policy.yaml"), "utf8")).toBe(policyBefore);
    expect(readFileSync(join(ws, ".git", "hooks", "pre-commit"), "utf8")).toMatch(/^#!\/bin\/sh\nexit 0/);
    expect(readdirSync(join(ws, ".git", "hooks"))).toEqual(["pre-commit"]);
    expect(readdirSync(ws)).not.toContain("skillbox.policy.toml");
    // while the rest of its grant works
    const ok = await call("writer", "tee", [join(ws, "notes", "out.txt")], { stdin: "fine" });
    expect(ok.ok && ok.output).toMatchObject({ exitCode: 0 });
    expect(readFileSync(join(ws, "notes", "out.txt"), "utf8")).toBe("fine");
    // deny rules hold inside the granted folder too
    const env = await call("writer", "cat", [join(ws, ".env")]);
    expect(JSON.stringify(env)).not.toMatch(/leaked/);
  });

  it("ends a setsid grandchild holding stdout with the process, and returns promptly", async () => {
    const marker = ["sleep", "31.4159"];
    const r = await call("tool", "bash", ["-c", `setsid ${marker.join(" ")} & echo started`]);
    expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: "started\n" });
    expect((r.ok && (r.output as { ms: number }).ms) || 0).toBeLessThan(15_000);
    expect(await until(() => processesWithArgs(marker).length === 0, 10_000)).toBe(true);
  });

  it("logs sandbox: bwrap on every process.exec event", async () => {
    await host.audit.flush();
    const execs = readEvents(join(root, "audit.jsonl")).filter((e) => e["event"] === "process.exec");
    expect(execs.length).toBeGreaterThan(5);
    for (const e of execs) expect(e["sandbox"]).toBe("bwrap");
  });
});

describe("where bwrap is missing", () => {
  const savedPath = process.env["PATH"];
  let root: string;
  let ws: string;
  const open = async (mode: string, warnings: string[]) => {
    writeFileSync(
      join(root, `${mode}.yaml`),
      `version: 1\nprocess: { sandbox: ${mode} }\ntrust:\n  trusted:\n    process:\n      - { command: echo, args: ["*"] }\n      - { command: bash, args: ["-c", "**"] }\n`,
    );
    return SkillHost.open({ skillsDir: join(root, "skills"), workspace: ws, policy: join(root, `${mode}.yaml`), audit: join(root, `${mode}.jsonl`), workers: 1, onWarning: (m) => warnings.push(m) });
  };
  beforeAll(() => {
    const w = workspace();
    root = w.root;
    ws = w.ws;
    writeSkill(join(root, "skills"), "runner", `permissions:\n  process:\n    - { command: echo, args: ["*"] }\n    - { command: bash, args: ["-c", "**"] }\n`, { "index.js": RUNNER });
    process.env["PATH"] = "/nonexistent-bin"; // no bwrap to be found
  });
  afterAll(() => {
    process.env["PATH"] = savedPath;
  });

  it("required: refuses ctx.exec and says how to install bubblewrap", async () => {
    const warnings: string[] = [];
    const host = await open("required", warnings);
    try {
      const r = await host.call("runner", { command: "echo", args: ["hi"] }, { caller: { id: "t", trust: "trusted" } });
      expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
      expect(!r.ok && r.error.message).toMatch(/apt-get install bubblewrap/);
      expect(warnings.filter((w) => /bubblewrap/.test(w))).toHaveLength(1);
      await host.audit.flush();
      expect(readEvents(join(root, "required.jsonl")).find((e) => e["event"] === "process.exec")).toMatchObject({ decision: "deny", rule: "sandbox:required", sandbox: "none" });
    } finally {
      await host.close();
    }
  });

  it("auto: runs unconfined, warns once at start and logs sandbox: none", async () => {
    const warnings: string[] = [];
    const host = await open("auto", warnings);
    try {
      for (let i = 0; i < 2; i++) {
        const r = await host.call("runner", { command: "echo", args: ["hi"] }, { caller: { id: "t", trust: "trusted" } });
        expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: "hi\n" });
      }
      expect(warnings.filter((w) => /unconfined/.test(w))).toHaveLength(1);
      await host.audit.flush();
      const execs = readEvents(join(root, "auto.jsonl")).filter((e) => e["event"] === "process.exec");
      expect(execs).toHaveLength(2);
      for (const e of execs) expect(e["sandbox"]).toBe("none");
    } finally {
      await host.close();
    }
  });

  it("unconfined, a setsid grandchild holding stdout does not keep ctx.exec waiting and is killed", async () => {
    const host = await open("off", []);
    try {
      const r = await host.call("runner", { command: "bash", args: ["-c", "setsid sleep 27.1828 & echo started"] }, { caller: { id: "t", trust: "trusted" } });
      expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: "started\n" });
      expect((r.ok && (r.output as { ms: number }).ms) || 0).toBeLessThan(15_000);
      // and it is found by the marker it inherited and killed, although it left the process group
      expect(await until(() => processesWithArgs(["sleep", "27.1828"]).length === 0, 10_000)).toBe(true);
    } finally {
      await host.close();
      for (const pid of processesWithArgs(["sleep", "27.1828"])) process.kill(pid, "SIGKILL");
    }
  });
});
