import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SkillHost, verifyAuditFile } from "../../dist/src/index.js";
import { EXAMPLE_SKILLS, ROOT, readEvents, tempDir, writeSkill } from "../helpers.js";

const WRITER = join(ROOT, "test", "fixtures", "audit-writer.mjs");
const DIST = join(ROOT, "dist", "src", "index.js");

function runWriter(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--no-node-snapshot", WRITER, DIST, ...args], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

describe("several writers, one log", () => {
  it("two processes, 1,000 calls each: no lost or torn lines, one valid chain", async () => {
    const dir = tempDir();
    const skills = join(dir, "skills");
    writeSkill(skills, "noop", "", { "index.js": "export default async (i) => ({ n: i.n });" });
    const file = join(dir, "audit.jsonl");
    const codes = await Promise.all([runWriter([skills, file, "1000", "close"]), runWriter([skills, file, "1000", "close"])]);
    expect(codes).toEqual([0, 0]);
    const text = readFileSync(file, "utf8");
    const lines = text.trimEnd().split("\n");
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    const events = readEvents(file);
    // Every call: call.start, attempt.start, attempt.end, call.end.
    expect(events.filter((e) => e["event"] === "call.end")).toHaveLength(2000);
    expect(events.filter((e) => e["event"] === "call.start")).toHaveLength(2000);
    expect(new Set(events.filter((e) => e["callId"] !== null).map((e) => e["caller"])).size).toBe(2);
    expect(verifyAuditFile(file)).toMatchObject({ ok: true, lines: lines.length });
  }, 120_000);

  it("events queued when the process exits (without close) still reach the file", async () => {
    const dir = tempDir();
    const file = join(dir, "audit.jsonl");
    expect(await runWriter(["-", file, "50", "exit"])).toBe(0);
    expect(readEvents(file).filter((e) => String(e["callId"]).startsWith("exit-"))).toHaveLength(50);
    expect(verifyAuditFile(file).ok).toBe(true);
  });
});

describe("audit.failMode and redaction from the policy", () => {
  it("failMode: closed refuses calls while the log cannot be written; open lets them run", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "blocker"), "");
    const bad = join(dir, "blocker", "audit.jsonl");
    for (const [mode, ok] of [
      ["closed", false],
      ["open", true],
    ] as const) {
      writeFileSync(join(dir, `${mode}.yaml`), `version: 1\naudit: { failMode: ${mode} }\n`);
      const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: dir, policy: join(dir, `${mode}.yaml`), audit: bad, workers: 1, onWarning: () => undefined });
      const r = await host.call("word-stats", { text: "x" });
      await host.close();
      expect(r.ok).toBe(ok);
      if (!r.ok) expect(r.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { reason: "audit-unwritable" } });
    }
  });

  it("redacts fields the policy lists and the values of the host's secret env vars", async () => {
    const dir = tempDir();
    const skills = join(dir, "skills");
    writeSkill(skills, "chatty", "", { "index.js": "export default async (i, ctx) => { ctx.log.info('user ' + i.leak, { email: 'a@b.example', note: i.leak }); return 1; };" });
    writeFileSync(join(dir, "p.yaml"), "version: 1\naudit: { redact: [fields.email] }\n");
    process.env["SKILLBOX_TEST_API_TOKEN"] = "tok-1234567890-secret";
    try {
      const host = await SkillHost.open({ skillsDir: skills, workspace: dir, policy: join(dir, "p.yaml"), audit: join(dir, "a.jsonl"), workers: 1 });
      await host.call("chatty", { leak: "tok-1234567890-secret" });
      await host.close();
    } finally {
      delete process.env["SKILLBOX_TEST_API_TOKEN"];
    }
    const text = readFileSync(join(dir, "a.jsonl"), "utf8");
    expect(text).not.toMatch(/a@b\.example|tok-1234567890-secret/);
    const log = readEvents(join(dir, "a.jsonl")).find((e) => e["event"] === "skill.log");
    expect(log).toMatchObject({ message: "user [redacted]", fields: { email: "[redacted]", note: "[redacted]" } });
    expect(verifyAuditFile(join(dir, "a.jsonl")).ok).toBe(true);
  });
});
