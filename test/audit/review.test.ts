import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionReview, SkillHost } from "../../dist/src/index.js";
import { BIN, cli as runCli, fixture, type Fixture, writeSkill } from "../helpers.js";

describe("audit review, stats and metrics for a scripted session", () => {
  let fx: Fixture;
  let host: SkillHost;
  const server = createServer((_q, s) => s.end("pong"));
  let port = 0;

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
    fx = fixture();
    mkdirSync(join(fx.workspace, "out"));
    writeFileSync(join(fx.workspace, "out", "old.txt"), "old");
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\ntrust:\n  trusted:\n    network: [{ host: "127.0.0.1", scheme: http }]\n    process: [{ command: echo, args: ["*"] }]\n`);
    writeSkill(fx.skills, "writer", 'permissions:\n  files:\n    - { path: "${workspace}/out/**", access: [write, create, delete] }\n    - { path: "${tmp}/**", access: [write, create] }\n', {
      "index.js":
        "export default async (i, ctx) => { await ctx.fs.writeFile(ctx.env.tmp + '/scratch.txt', 's'); await ctx.fs.writeFile(ctx.env.workspace + '/out/new.txt', 'n'); await ctx.fs.delete(ctx.env.workspace + '/out/old.txt'); return 'ok'; };",
    });
    writeSkill(fx.skills, "runner", "permissions: { process: [{ command: echo, args: ['*'] }] }\n", { "index.js": "export default async (i, ctx) => (await ctx.exec('echo', ['hello'])).stdout;" });
    writeSkill(fx.skills, "pinger", `permissions: { network: [{ host: "127.0.0.1", scheme: http }] }\n`, {
      "index.js": `export default async (i, ctx) => (await ctx.fetch('http://127.0.0.1:${port}/')).text;`,
    });
    writeSkill(fx.skills, "snoop", 'permissions: { files: [{ path: "${workspace}/**", access: [read] }] }\n', { "index.js": "export default async (i, ctx) => ctx.fs.readFile('/etc/shadow');" });
    host = await fx.open({ policy: join(fx.root, "policy.yaml") });
    const trusted = { caller: { id: "alice", trust: "trusted", session: "s-42" } } as const;
    await host.call("writer", {}, trusted);
    await host.call("runner", {}, trusted);
    await host.call("pinger", {}, trusted);
    for (let i = 0; i < 3; i++) await host.call("snoop", {}, trusted); // refused at run time, 3 times
    await host.call("writer", {}, { caller: { id: "bob", trust: "untrusted", session: "s-42" } }); // refused before running
    await host.call("runner", {}, { caller: { id: "carol", trust: "trusted", session: "other" } });
    await host.audit.flush();
  });
  afterAll(async () => {
    await host.close();
    server.close();
  });

  const cli = (...args: string[]) => runCli(["audit", ...args, "--audit", fx.auditFile]);

  it("reports per session and skill, with denials, processes, hosts, files and flags", async () => {
    const r = await cli("review", "--session", "s-42", "--json");
    expect(r.status).toBe(0);
    const [s] = JSON.parse(r.stdout) as SessionReview[];
    expect(s!.session).toBe("s-42");
    expect(s!.callers).toEqual(["alice", "bob"]);
    const by = Object.fromEntries(s!.skills.map((k) => [k.skill, k]));
    expect(by["writer"]).toMatchObject({
      calls: 2,
      outcomes: { ok: 1, E_PERMISSION_DENIED: 1 },
      filesWritten: [expect.stringMatching(/skillbox-.*\/scratch\.txt$/), join(fx.workspace, "out", "new.txt")],
      filesDeleted: [join(fx.workspace, "out", "old.txt")],
    });
    expect(by["runner"]?.processes).toEqual([{ command: "echo", args: ["hello"], exitCode: 0, count: 1 }]);
    expect(by["pinger"]?.hosts).toEqual([`127.0.0.1:${port}`]);
    expect(by["snoop"]?.denials).toEqual([{ op: "fs.readFile", target: "/etc/shadow", rule: "manifest", count: 3 }]);
    const flags = s!.flags.map((f) => `${f.kind}:${f.skill}:${f.target}`);
    expect(flags).toContain(`write-outside-tmp:writer:${join(fx.workspace, "out", "new.txt")}`);
    expect(flags.some((f) => f.startsWith("write-outside-tmp") && f.includes("scratch.txt"))).toBe(false);
    expect(flags).toContain(`delete:writer:${join(fx.workspace, "out", "old.txt")}`);
    expect(flags).toContain("process:runner:echo hello");
    expect(flags).toContain(`new-host:pinger:127.0.0.1:${port}`);
    expect(flags).toContain("repeated-denials:snoop:3 refusals");
  });

  it("a host seen in an earlier session is not flagged again; --since filters by time", async () => {
    const other = (JSON.parse((await cli("review", "--session", "other", "--json")).stdout) as SessionReview[])[0]!;
    expect(other.flags.map((f) => f.kind)).toEqual(["process"]);
    expect(JSON.parse((await cli("review", "--since", "1h", "--json")).stdout)).toHaveLength(2);
    expect((await cli("review", "--since", "soon")).status).toBe(2);
  });

  it("prints readable tables for people", async () => {
    const out = (await cli("review", "--session", "s-42")).stdout;
    expect(out).toMatch(/Session s-42 .* callers: alice, bob/);
    expect(out).toMatch(/skill\s+calls\s+ok\s+failed\s+denied\s+retries\s+fallbacks/);
    expect(out).toMatch(/⚑ snoop was denied repeatedly: 3 refusals/);
    expect(out).toMatch(/⚑ writer deleted: .*old\.txt/);
  });

  it("audit stats and host.metrics() count calls per skill and outcome and denials per rule", async () => {
    const stats = JSON.parse((await cli("stats", "--json")).stdout) as { calls: { skill: string; outcome: string; count: number }[]; denials: { rule: string; count: number }[] };
    expect(stats.calls).toContainEqual(expect.objectContaining({ skill: "snoop", outcome: "E_PERMISSION_DENIED", count: 3 }));
    expect(stats.denials).toContainEqual({ rule: "manifest", count: 3 });
    const m = host.metrics();
    expect(m.calls).toContainEqual(expect.objectContaining({ skill: "runner", outcome: "ok", count: 2 }));
    expect(m.denials).toContainEqual({ rule: "manifest", count: 3 });
    expect(m.auditWriteFailures).toBe(0);
    const text = await host.prometheus();
    expect(text).toMatch(/skillbox_calls_total\{skill="snoop",outcome="E_PERMISSION_DENIED"\} 3/);
    expect(text).toMatch(/skillbox_call_duration_seconds_bucket\{le="[0-9.]+",skill="runner",outcome="ok"\} \d/);
    expect(text).toMatch(/skillbox_audit_write_failures 0/);
  });
});

describe("audit tail -f", () => {
  it("follows lines appended after it started", async () => {
    const { spawn } = await import("node:child_process");
    const { AuditLog } = await import("../../dist/src/index.js");
    const fx = fixture();
    const log = new AuditLog({ file: fx.auditFile });
    log.event("call.start", { callId: "first-call", skill: "a", caller: "c", trust: "untrusted" });
    await log.flush();
    const child = spawn(process.execPath, [BIN, "audit", "tail", "-f", "-n", "1", "--audit", fx.auditFile], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let wanted: { re: RegExp; done: () => void } | undefined;
    const seen = (re: RegExp) => new Promise<void>((done) => (re.test(out) ? done() : (wanted = { re, done })));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (wanted?.re.test(out)) wanted.done();
    });
    // A CLI that dies early ends the wait; the assertions below then show what it printed.
    child.once("exit", () => wanted?.done());
    // Readiness: the last existing line is printed after the file was read, so anything appended now is new.
    await seen(/first-c/);
    log.event("call.end", { callId: "second-call", skill: "a", caller: "c", trust: "untrusted", outcome: "ok", attempts: 1, durationMs: 1 });
    await log.close();
    await seen(/second-c/);
    const exited = new Promise((done) => (child.exitCode !== null ? done(null) : child.once("exit", done)));
    child.kill("SIGINT");
    await exited;
    expect(out).toMatch(/first-c/);
    expect(out).toMatch(/second-c end .*ok after 1 attempt/);
  });
});
