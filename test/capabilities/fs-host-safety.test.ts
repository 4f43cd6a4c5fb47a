import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

/** A skill holding only ${tmp}: writes 4 MB there, then fires 60 reads of it without awaiting them. */
const FLOOD = `export default async function (input, ctx) {
  const p = ctx.env.tmp + "/big.txt";
  await ctx.fs.writeFile(p, "x".repeat(4 * 1024 * 1024));
  const pending = [];
  for (let i = 0; i < 60; i++) pending.push(ctx.fs.readFile(p).then((s) => s.length, (e) => e.message));
  const results = await Promise.all(pending);
  return { ok: results.filter((r) => typeof r === "number").length, refusals: results.filter((r) => typeof r === "string") };
}`;

/** Reads a 4 MB file again and again, awaiting each read. */
const SERIAL = `export default async function (input, ctx) {
  const p = ctx.env.tmp + "/big.txt";
  await ctx.fs.writeFile(p, "x".repeat(4 * 1024 * 1024));
  for (let i = 0; i < 40; i++) {
    try { await ctx.fs.readFile(p); } catch (e) { return { reads: i, error: e.message }; }
  }
  return { reads: 40 };
}`;

const PROBE = `export default async function (input, ctx) {
  try { return { value: await ctx.fs.readFile(input.path) }; }
  catch (err) { return { error: String(err.message), name: err.name ?? null }; }
}`;

describe("ctx.fs cannot freeze, flood or probe the host", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    mkdirSync(join(fx.workspace, "data"));
    execFileSync("mkfifo", [join(fx.workspace, "data", "pipe")]);
    symlinkSync("/etc/hostname", join(fx.workspace, "data", "host-link"));
    writeSkill(fx.skills, "flood", `permissions:\n  files:\n    - { path: "\${tmp}/**", access: [read, write, create] }\nlimits: { timeoutMs: 20000 }\n`, { "index.js": FLOOD });
    writeSkill(fx.skills, "serial", `permissions:\n  files:\n    - { path: "\${tmp}/**", access: [read, write, create] }\nlimits: { timeoutMs: 20000 }\n`, { "index.js": SERIAL });
    writeSkill(fx.skills, "probe", `permissions:\n  files:\n    - { path: "\${workspace}/data/**", access: [read] }\n`, { "index.js": PROBE });
    writeSkill(fx.skills, "ping", "", { "index.js": "export default async () => 'pong';" });
    host = await fx.open({ workers: 2 });
  });
  afterAll(() => host.close());
  const call = (skill: string, input: Record<string, unknown> = {}) => host.call(skill, input, { caller: { id: "t", trust: "trusted" } });

  it("60 un-awaited 4 MB reads: at most 16 in flight, the byte budget holds, and a bystander's call is answered meanwhile", async () => {
    const flood = call("flood");
    const ping = await call("ping");
    expect(ping.ok && ping.output).toBe("pong");
    const r = await flood;
    expect(r.ok).toBe(true);
    const out = r.ok ? (r.output as { ok: number; refusals: string[] }) : { ok: 0, refusals: [] };
    expect(out.ok).toBeLessThanOrEqual(16);
    expect(out.ok + out.refusals.length).toBe(60);
    expect(out.refusals.some((m) => /in flight/.test(m))).toBe(true);
  });

  it("stops an attempt's reads when its byte budget is spent", async () => {
    const r = await call("serial");
    expect(r.ok && r.output).toMatchObject({ error: expect.stringMatching(/byte budget/) });
    expect(r.ok && (r.output as { reads: number }).reads).toBeLessThan(20);
  });

  it("refuses a FIFO without blocking (nobody writes to it)", async () => {
    const r = await call("probe", { path: join(fx.workspace, "data", "pipe") });
    expect(r.ok && r.output).toMatchObject({ error: expect.stringMatching(/not a regular file/) });
  });

  it("refuses a device", async () => {
    const dev = await host.call("probe", { path: "/dev/zero" }, { caller: { id: "t", trust: "system" } });
    expect(dev.ok).toBe(false); // outside the grant: a denial, never an endless read
  });

  it("answers a path below a file outside the grant with a denial, not 'not a folder'", async () => {
    const r = await call("probe", { path: "/etc/shadow/x" });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(!r.ok && r.error.message).not.toMatch(/not a folder|ENOTDIR|no such/i);
    const events = await fx.events();
    expect(events.find((e) => e["event"] === "capability" && e["op"] === "fs.readFile" && e["decision"] === "deny" && e["target"] === "/etc/shadow/x")).toBeTruthy();
  });

  it("names the requested path in a denial, never where a symlink points", async () => {
    const r = await call("probe", { path: join(fx.workspace, "data", "host-link") });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(!r.ok && r.error.message).toContain(join(fx.workspace, "data", "host-link"));
    expect(!r.ok && r.error.message).not.toContain("/etc/hostname");
  });
});
