import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, SkillHost, verifyAuditFile, verifyAuditText } from "../../dist/src/index.js";
import { EXAMPLE_SKILLS, fixture, readEvents, tempDir, writeSkill } from "../helpers.js";

const REQUIRED = ["time", "event", "callId", "skill", "caller", "trust", "session", "seq", "prev"];

async function sessionLog(): Promise<{ file: string; text: string }> {
  const dir = tempDir();
  const file = join(dir, "audit.jsonl");
  const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: dir, audit: file, workers: 1 });
  for (let i = 0; i < 3; i++) await host.call("word-stats", { text: `line ${i}` }, { caller: { id: "u1", trust: "untrusted", session: "s-1" } });
  await host.close();
  return { file, text: readFileSync(file, "utf8") };
}

describe("security log lines", () => {
  it("carry the contract fields, one call.start and one call.end per call", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "reader", 'permissions: { files: [{ path: "${workspace}/**", access: [read] }] }\n', {
      "index.js": "export default async (i, ctx) => { ctx.log.info('hello', { n: 1 }); return ctx.fs.readFile(ctx.env.workspace + '/a.txt').catch(() => 'none'); };",
    });
    writeFileSync(join(fx.workspace, "a.txt"), "A");
    const host = await fx.open();
    const ok = await host.call("reader", {}, { caller: { id: "alice", trust: "user-verified", session: "chat-42" } });
    const denied = await host.call("reader", {}, { caller: { id: "bob", trust: "untrusted" } });
    await host.close();
    const events = readEvents(fx.auditFile);
    for (const e of events) for (const k of REQUIRED) expect(e, `${String(e["event"])} lacks ${k}`).toHaveProperty(k);
    expect(new Date(String(events[0]?.["time"])).toISOString()).toBe(events[0]?.["time"]);
    const forCall = (id: string, name: string) => events.filter((e) => e["callId"] === id && e["event"] === name);
    expect(forCall(ok.callId, "call.start")).toHaveLength(1);
    expect(forCall(ok.callId, "call.end")[0]).toMatchObject({ outcome: "ok", attempts: 1, session: "chat-42", caller: "alice", trust: "user-verified" });
    expect(forCall(ok.callId, "capability")[0]).toMatchObject({ op: "fs.readFile", target: join(fx.workspace, "a.txt"), decision: "allow", rule: "${workspace}/**" });
    expect(forCall(ok.callId, "skill.log")[0]).toMatchObject({ level: "info", message: "hello", fields: { n: 1 } });
    expect(forCall(denied.callId, "call.denied")[0]).toMatchObject({ code: "E_PERMISSION_DENIED", needs: [{ kind: "files", target: "${workspace}/**", access: "read" }] });
    expect(forCall(denied.callId, "call.end")[0]).toMatchObject({ outcome: "error", code: "E_PERMISSION_DENIED", attempts: 0 });
    expect(events.map((e) => e["seq"])).toEqual(events.map((_, i) => i + 1));
  });
});

describe("tamper evidence", () => {
  it("an untouched log verifies", async () => {
    const { file } = await sessionLog();
    expect(verifyAuditFile(file)).toMatchObject({ ok: true });
  });

  const mutate: Array<[string, (lines: string[]) => string[], number]> = [
    ["an edited line", (l) => l.map((x, i) => (i === 4 ? x.replace('"u1"', '"u2"') : x)), 6],
    ["a removed line", (l) => l.filter((_, i) => i !== 4), 5],
    ["an inserted line", (l) => [...l.slice(0, 4), l[2]!, ...l.slice(4)], 5],
    ["two swapped lines", (l) => [...l.slice(0, 3), l[4]!, l[3]!, ...l.slice(5)], 4],
    ["a removed first line", (l) => l.slice(1), 1],
  ];
  it.each(mutate)("finds %s and names its line", async (_what, change, line) => {
    const { text } = await sessionLog();
    const lines = text.trimEnd().split("\n");
    const r = verifyAuditText(change(lines).join("\n") + "\n");
    expect(r.ok).toBe(false);
    expect(r.line).toBe(line);
    expect(r.truncated).toBeUndefined();
  });

  it("reports a line cut off by a crash as truncated, not tampered", async () => {
    const { text } = await sessionLog();
    const r = verifyAuditText(text.slice(0, text.length - 40));
    expect(r).toMatchObject({ ok: false, truncated: true });
  });

  it("a restarted host continues the chain, also after a torn line", async () => {
    const { file, text } = await sessionLog();
    const lineCount = text.trimEnd().split("\n").length;
    writeFileSync(file, text.slice(0, text.length - 40)); // crash mid-line
    const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, audit: file, workers: 1 });
    await host.call("word-stats", { text: "after restart" });
    await host.close();
    const r = verifyAuditFile(file);
    expect(r).toMatchObject({ ok: true, tornLines: [lineCount] });
  });

  it("with SKILLBOX_AUDIT_KEY the chain is an HMAC: it verifies only with the key", async () => {
    const dir = tempDir();
    const file = join(dir, "a.jsonl");
    const log = new AuditLog({ file, key: "k1" });
    for (let i = 0; i < 3; i++) log.event("call.start", { callId: String(i) });
    await log.close();
    expect(verifyAuditFile(file, "k1").ok).toBe(true);
    expect(verifyAuditFile(file, "other").ok).toBe(false);
  });
});

describe("a log that cannot be written", () => {
  it("never fails the call; the problem is reported on stderr", async () => {
    const dir = tempDir();
    const blocker = join(dir, "not-a-folder");
    writeFileSync(blocker, "");
    const warnings: string[] = [];
    const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: dir, audit: join(blocker, "audit.jsonl"), workers: 1, onWarning: (m) => warnings.push(m) });
    const r = await host.call("word-stats", { text: "still works" });
    await host.close();
    expect(r.ok).toBe(true);
    expect(warnings.join("\n")).toMatch(/cannot write the security log .*not-a-folder is a file, not a folder \(E[A-Z]+\); calls go on/);
    expect(warnings.filter((w) => w.includes("cannot write the security log"))).toHaveLength(1); // each outage once
    expect(warnings.join("\n")).toMatch(/\d+ security log event\(s\) could not be written/);
  });
});

describe("redaction", () => {
  it("removes Authorization and Cookie headers and secret fields before hashing", async () => {
    const dir = tempDir();
    const file = join(dir, "a.jsonl");
    const log = new AuditLog({ file });
    log.event("capability", { callId: "1", headers: { authorization: "Bearer abc.def", cookie: "sid=1" }, fields: { token: "t0k" } });
    await log.close();
    const text = readFileSync(file, "utf8");
    expect(text).not.toMatch(/abc\.def|sid=1|t0k/);
    expect(text).toMatch(/\[redacted\]/);
    appendFileSync(file, "");
    expect(verifyAuditFile(file).ok).toBe(true);
  });
});
