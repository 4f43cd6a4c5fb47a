import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, waitFor, writeSkill } from "../helpers.js";

function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "?";
  } catch {
    return "gone";
  }
}

const RULES = `
    - { command: echo, args: ["**"] }
    - { command: git, args: ["log", "--oneline", "-n", "/^[0-9]{1,3}$/"] }
    - { command: env }
    - { command: sleep, args: ["/^[0-9]+$/"] }
    - { command: head, args: ["-c", "/^[0-9]+$/", "/dev/zero"] }
    - { command: sh, args: ["-c", "sleep 1000 & echo $!; wait"] }
    - { command: pwd }`;

const RUNNER = `export default async function (input, ctx) {
  try {
    const r = await ctx.exec(input.command, input.args ?? [], input.options ?? {});
    return { ...r, stdout: r.stdout.length > 2000 ? { length: r.stdout.length } : r.stdout };
  } catch (err) {
    if (input.swallow) return { swallowed: String(err.message) };
    throw err;
  }
}`;

describe("ctx.exec holds against shell, argument, PATH and environment attacks", () => {
  let fx: Fixture;
  let host: SkillHost;
  const savedPath = process.env["PATH"];
  beforeAll(async () => {
    fx = fixture();
    // unconfined (sandbox: off): these tests are about the spawn itself; confinement has its own file
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\nprocess: { sandbox: "off" }\ntrust:\n  trusted:\n    process:${RULES}\n`);
    writeSkill(fx.skills, "runner", `permissions:\n  files:\n    - { path: "\${workspace}/**", access: [list] }\n  process:${RULES}\nlimits: { timeoutMs: 5000 }\n`, { "index.js": RUNNER });
    writeSkill(
      fx.skills,
      "with-cmd-fallback",
      `permissions:\n  process:\n    - { command: echo, args: ["cached", "for", "\${workspace}"] }\nfallback: { command: ["echo", "cached", "for", "\${workspace}"] }\n`,
      { "index.js": "export default async () => { throw new Error('primary down'); };" },
    );
    writeSkill(fx.skills, "bad-cmd-fallback", `fallback: { command: ["cat", "/etc/passwd"] }\n`, { "index.js": "export default async () => { throw new Error('primary down'); };" });
    // A fake git earlier on the host's PATH must never be picked.
    const fake = join(fx.root, "fakebin");
    mkdirSync(fake);
    writeFileSync(join(fake, "git"), "#!/bin/sh\necho HIJACKED\n");
    chmodSync(join(fake, "git"), 0o755);
    process.env["PATH"] = `${fake}:${savedPath}`;
    process.env["SKILLBOX_TEST_SECRET"] = "hunter2";
    process.env["NODE_OPTIONS"] = "--require /nonexistent/evil.js";
    process.env["LD_PRELOAD"] = "/nonexistent/evil.so";
    host = await fx.open({ policy: join(fx.root, "policy.yaml"), workers: 2 });
  });
  afterAll(async () => {
    process.env["PATH"] = savedPath;
    delete process.env["SKILLBOX_TEST_SECRET"];
    delete process.env["NODE_OPTIONS"];
    delete process.env["LD_PRELOAD"];
    await host.close();
  });

  const run = (input: Record<string, unknown>, trust = "trusted") => host.call("runner", input, { caller: { id: "t", trust } });

  it("never uses a shell: metacharacters reach the program as literal text", async () => {
    const args = ["$(id)", ";", "id", "|", "cat", "/etc/passwd", "`id`", "&&", "rm", "-rf", "/"];
    const r = await run({ command: "echo", args });
    expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: args.join(" ") + "\n" });
  });

  it("refuses an argument that matches none of the patterns (argument injection)", async () => {
    const r = await run({ command: "git", args: ["log", "--upload-pack=touch /tmp/pwned", "-n", "5"] });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(!r.ok && r.error.message).toMatch(/--upload-pack/);
    const r2 = await run({ command: "git", args: ["log", "-n", "5; id"] });
    expect(!r2.ok && r2.error.code).toBe("E_PERMISSION_DENIED");
  });

  it("resolves commands through the policy's bin path, never the caller's PATH", async () => {
    const r = await run({ command: "git", args: ["log", "--oneline", "-n", "1"], options: { cwd: "." } });
    expect(r.ok).toBe(true);
    if (r.ok) expect(JSON.stringify(r.output)).not.toMatch(/HIJACKED/);
    const events = await fx.events();
    expect(events.find((e) => e["event"] === "process.exec" && e["command"] === "git" && e["decision"] === "allow")?.["resolved"]).toMatch(/^\/(usr\/)?bin\/git$/);
  });

  it.each([
    ["a relative path", "./git"],
    ["an undeclared absolute path", "/usr/bin/id"],
    ["an undeclared command", "curl"],
  ])("refuses %s", async (_what, command) => {
    const r = await run({ command, args: [] });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
  });

  it("scrubs the environment: no host secrets, NODE_OPTIONS or LD_PRELOAD; HOME is the call's tmp", async () => {
    const r = await run({ command: "env" });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const out = (r.output as { stdout: string }).stdout;
    expect(out).not.toMatch(/hunter2|NODE_OPTIONS|LD_PRELOAD|SKILLBOX_TEST_SECRET/);
    expect(out).toMatch(/^HOME=\/tmp\/skillbox-/m);
    // unconfined, a random marker lets skillbox find descendants that left the process group
    expect(out).toMatch(/^SKILLBOX_EXEC=[0-9a-f-]{36}$/m);
    expect(
      out
        .trim()
        .split("\n")
        .map((l) => l.split("=")[0])
        .sort(),
    ).toEqual(["HOME", "LANG", "LC_ALL", "PATH", "SKILLBOX_EXEC", "TMPDIR"]);
  });

  it("kills a child that runs past its timeout, with its whole process group", async () => {
    const r = await run({ command: "sleep", args: ["1000"], options: { timeoutMs: 300 } });
    expect(r.ok && r.output).toMatchObject({ timedOut: true, signal: "SIGKILL", exitCode: null });
    const g = await run({ command: "sh", args: ["-c", "sleep 1000 & echo $!; wait"], options: { timeoutMs: 300 } });
    const grandchild = Number(String((g.ok && (g.output as { stdout: string }).stdout) || "").trim());
    expect(grandchild).toBeGreaterThan(0);
    // Gone, or a zombie waiting to be reaped by init: either way no longer running (the kill lands asynchronously).
    await waitFor("the grandchild to stop", () => /^(gone|Z)$/.test(processState(grandchild)));
    expect(processState(grandchild)).toMatch(/^(gone|Z)$/);
  });

  it("caps the output of a child that prints 100 MB", async () => {
    const r = await run({ command: "head", args: ["-c", "100000000", "/dev/zero"] });
    // Stopped at the cap (killed, not drained to its end and not by the timeout).
    expect(r.ok && r.output).toMatchObject({ truncated: true, stdout: { length: 1024 * 1024 }, exitCode: null, signal: "SIGKILL", timedOut: false });
  });

  it("refuses a working folder outside the granted files area", async () => {
    const r = await run({ command: "pwd", options: { cwd: "/etc" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    const ok = await run({ command: "pwd", options: { cwd: fx.workspace } });
    expect(ok.ok && (ok.output as { stdout: string }).stdout.trim()).toBe(fx.workspace);
  });

  it("refuses processes at a trust level whose ceiling has none, before anything runs", async () => {
    const r = await run({ command: "echo", args: ["hi"] }, "system");
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(r.attempts).toBe(0);
  });

  it("writes a process.exec event for every run and every refusal", async () => {
    await run({ command: "echo", args: ["audited"] });
    await run({ command: "git", args: ["push"], swallow: true });
    const execs = (await fx.events()).filter((e) => e["event"] === "process.exec");
    expect(execs.find((e) => e["decision"] === "allow" && JSON.stringify(e["args"]) === '["audited"]')).toMatchObject({ command: "echo", exitCode: 0, signal: null, caller: "t", skill: "runner" });
    expect(execs.find((e) => e["decision"] === "deny" && JSON.stringify(e["args"]) === '["push"]')).toMatchObject({ command: "git", rule: "manifest" });
    for (const e of execs.filter((x) => x["decision"] === "allow")) expect(typeof e["durationMs"]).toBe("number");
  });

  it("runs fallback.command through the same checks", async () => {
    const r = await host.call("with-cmd-fallback", {}, { caller: { id: "t", trust: "trusted" } });
    expect(r.ok && r.output).toMatchObject({ exitCode: 0, stdout: `cached for ${fx.workspace}\n` });
    expect(r.fallback).toBe("echo cached for ${workspace}");
    // the variable in the argument pattern expanded to this workspace only
    const bad = await host.call("bad-cmd-fallback", {}, { caller: { id: "t", trust: "trusted" } });
    expect(!bad.ok && bad.error.code).toBe("E_PERMISSION_DENIED");
  });
});
