import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, SkillHost } from "../../dist/src/index.js";
import { main } from "../../dist/src/cli/main.js";
import { readEvents, tempDir, writeSkill } from "../helpers.js";

/** Runs the CLI in this process with an environment of its own; returns exit code and output. */
async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  const saved: Record<string, string | undefined> = {};
  for (const k of ["SKILLBOX_AUDIT_KEY", ...Object.keys(env)]) saved[k] = process.env[k];
  delete process.env["SKILLBOX_AUDIT_KEY"];
  for (const [k, v] of Object.entries(env))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  const out: string[] = [];
  const err: string[] = [];
  try {
    const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

async function keyedLog(key: string | undefined, events = 6): Promise<string> {
  const file = join(tempDir(), "audit.jsonl");
  const log = new AuditLog({ file, ...(key !== undefined ? { key } : {}) });
  for (let i = 0; i < events; i++) log.event(i % 2 ? "call.end" : "call.start", { callId: `c${Math.floor(i / 2)}`, skill: "s", caller: "t", outcome: "ok" });
  await log.close();
  return file;
}

describe("audit verify takes the key the way the writer does", () => {
  it("an untouched keyed log verifies with SKILLBOX_AUDIT_KEY, and with --key-env NAME", async () => {
    const file = await keyedLog("the-right-key");
    const viaDefault = await cli(["audit", "verify", "--audit", file], { SKILLBOX_AUDIT_KEY: "the-right-key" });
    expect(viaDefault.code).toBe(0);
    expect(viaDefault.out).toMatch(/chain intact/);
    const viaName = await cli(["audit", "verify", "--audit", file, "--key-env", "MY_AUDIT_KEY", "--json"], { MY_AUDIT_KEY: "the-right-key" });
    expect(viaName.code).toBe(0);
    expect(JSON.parse(viaName.out)).toMatchObject({ ok: true });
  });

  it("without the key it says a key is needed, not that the log was edited", async () => {
    const file = await keyedLog("the-right-key");
    const r = await cli(["audit", "verify", "--audit", file, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, reason: "key-required" });
    expect((await cli(["audit", "verify", "--audit", file])).out).not.toMatch(/edited/);
  });

  it("a wrong key is reported as a wrong key; a key given for an unkeyed log as such", async () => {
    const keyed = await keyedLog("the-right-key");
    const wrong = await cli(["audit", "verify", "--audit", keyed, "--json"], { SKILLBOX_AUDIT_KEY: "not-the-key" });
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.out)).toMatchObject({ ok: false, reason: "wrong-key" });
    const plain = await keyedLog(undefined);
    const extra = await cli(["audit", "verify", "--audit", plain, "--json"], { SKILLBOX_AUDIT_KEY: "some-key" });
    expect(JSON.parse(extra.out)).toMatchObject({ ok: false, reason: "not-keyed" });
  });

  it("with the right key, an edited line is found and named", async () => {
    const file = await keyedLog("the-right-key");
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    lines[2] = lines[2]!.replace('"outcome":"ok"', '"outcome":"no"');
    writeFileSync(file, lines.join("\n") + "\n");
    const r = await cli(["audit", "verify", "--audit", file, "--json"], { SKILLBOX_AUDIT_KEY: "the-right-key" });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, reason: "edited", line: 4 });
  });

  it("--key-env naming an unset variable is a usage error (exit 2), not a verdict", async () => {
    const file = await keyedLog("k");
    const r = await cli(["audit", "verify", "--audit", file, "--key-env", "SKILLBOX_TEST_UNSET_VAR"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/SKILLBOX_TEST_UNSET_VAR.*not set/);
  });

  it("review and stats check the chain with the key too, and warn when it does not hold", async () => {
    const file = await keyedLog("the-right-key");
    const good = await cli(["audit", "stats", "--audit", file, "--json"], { SKILLBOX_AUDIT_KEY: "the-right-key" });
    expect(JSON.parse(good.out)).toMatchObject({ chain: { ok: true } });
    const bad = await cli(["audit", "stats", "--audit", file], { SKILLBOX_AUDIT_KEY: "wrong" });
    expect(bad.out).toMatch(/chain does not verify.*wrong key/);
  });
});

describe("event fields are the host's", () => {
  it("a skill's attempt to set level, event or seq through its fields lands nested; one level per line", async () => {
    const dir = tempDir();
    const skills = join(dir, "skills");
    writeSkill(skills, "forger", "", {
      "index.js": `export default async (i, ctx) => {
        ctx.log.warn("hello", { level: "error", event: "call.end", seq: 1, prev: "0", time: "1970", callId: "forged" });
        return 1;
      };`,
    });
    const file = join(dir, "a.jsonl");
    const host = await SkillHost.open({ skillsDir: skills, workspace: dir, audit: file, workers: 1 });
    const r = await host.call("forger", {});
    await host.close();
    expect(r.ok).toBe(true);
    const raw = readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.includes('"skill.log"'))!;
    expect(raw.match(/"level":/g)).toHaveLength(2); // the line's own, and the one nested in fields
    expect(raw.match(/"event":/g)).toHaveLength(2);
    const e = readEvents(file).find((x) => x["event"] === "skill.log")!;
    expect(e).toMatchObject({ event: "skill.log", level: "warn", callId: r.callId, message: "hello", fields: { level: "error", event: "call.end", seq: 1, callId: "forged" } });
    expect(e["seq"]).not.toBe(1);
    // Top-level keys are exactly the host's: nothing of the skill's beside them.
    expect(
      Object.keys(e).filter((k) => !["seq", "prev", "time", "level", "event", "callId", "skill", "caller", "trust", "session", "attempt", "message", "fields", "policyVersion"].includes(k)),
    ).toEqual([]);
  });

  it("the host's own fields cannot duplicate the line's keys either", async () => {
    const file = join(tempDir(), "a.jsonl");
    const log = new AuditLog({ file });
    log.event("call.start", { level: "debug", seq: 99, event: "x", time: "y", callId: "c" }, "warn");
    await log.close();
    const line = readFileSync(file, "utf8").split("\n")[0]!;
    expect(line.match(/"level":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ seq: 1, event: "call.start", level: "warn", callId: "c" });
  });
});

describe("terminal safety", () => {
  const nasty = "ok\u001b[2J\u001b[1;1Hforged line\u001b]52;c;ZWNobyBwd25lZA==\u0007\u009b31m\u202eevil\r\n";

  async function nastyLog(): Promise<string> {
    const file = join(tempDir(), "audit.jsonl");
    const log = new AuditLog({ file });
    log.event("call.start", { callId: "c1", skill: "s", caller: nasty, trust: "untrusted", session: null });
    log.event("skill.log", { callId: "c1", skill: "s", caller: "t", message: nasty, fields: { [nasty]: nasty } });
    log.event("call.end", { callId: "c1", skill: nasty, caller: "t", outcome: "error", code: nasty, attempts: 1, durationMs: 1 });
    await log.close();
    return file;
  }

  const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

  it("tail prints ESC, OSC, C1 and bidi controls escaped, never raw (readable and --json)", async () => {
    const file = await nastyLog();
    for (const flags of [[], ["--json"]]) {
      const r = await cli(["audit", "tail", "--audit", file, ...flags]);
      expect(r.code).toBe(0);
      expect(r.out).not.toMatch(CONTROL);
      expect(r.out.split("\n")).toHaveLength(4); // 3 events and the closing checkpoint: a skill's \r\n makes no lines of its own
    }
    const readable = (await cli(["audit", "tail", "--audit", file])).out;
    expect(readable).toContain("\\x1b[2J");
    expect(readable).toContain("\\x1b]52;c;");
    expect(readable).toContain("\\x9b31m");
    expect(readable).toContain("\\u202e");
    const json = (await cli(["audit", "tail", "--audit", file, "--json"])).out.split("\n");
    expect(JSON.parse(json[1]!)["message"]).toBe(nasty); // still the same value
  });

  it("review and stats escape them too", async () => {
    const file = await nastyLog();
    for (const sub of ["review", "stats"]) {
      for (const flags of [[], ["--json"]]) {
        const r = await cli(["audit", sub, "--audit", file, ...flags]);
        expect(r.code).toBe(0);
        expect(r.out + r.err).not.toMatch(CONTROL);
      }
    }
  });
});
