import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditLog, SkillHost, verifyAuditText } from "../../dist/src/index.js";
import { readPgLines } from "../../dist/src/audit/pg-sink.js";
import { BIN, EXAMPLE_SKILLS, ROOT, readEvents, tempDir } from "../helpers.js";
import { startPostgres, type PgServer } from "../pg-server.js";

const server: PgServer = await startPostgres();
if ("skip" in server) console.warn(`\n⚠ PostgreSQL audit tests SKIPPED: ${server.skip}\n`);

afterAll(() => {
  if ("stop" in server) server.stop();
});

describe.skipIf("skip" in server)("PostgreSQL audit sink (a real server)", () => {
  const url = "url" in server ? server.url : "";
  beforeAll(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("DROP TABLE IF EXISTS skillbox_audit");
    await c.end();
  });

  async function session(file: string, calls: number, caller: string) {
    const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: tempDir(), audit: { file, postgres: url }, workers: 1, onWarning: () => undefined });
    await Promise.all(
      Array.from({ length: calls }, (_, i) => host.call(i % 5 === 0 ? "read-notes" : "word-stats", { text: `t${i}`, query: "x" }, { caller: { id: caller, trust: "untrusted", session: caller } })),
    );
    await host.close();
  }

  it("stores the same events as the file, with a valid chain, from two hosts at once", async () => {
    const dir = tempDir();
    await Promise.all([session(join(dir, "a.jsonl"), 100, "host-a"), session(join(dir, "b.jsonl"), 100, "host-b")]);
    const lines = await readPgLines(url);
    // Checkpoints seal each file's own chain; the table's chain is sealed by the database.
    const fileEvents = [...readEvents(join(dir, "a.jsonl")), ...readEvents(join(dir, "b.jsonl"))].filter((e) => e["event"] !== "log.checkpoint");
    expect(lines.length).toBe(fileEvents.length);
    expect(verifyAuditText(lines.join("\n") + "\n")).toMatchObject({ ok: true, lines: lines.length });
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e["event"] === "call.denied" && e["skill"] === "read-notes")).toHaveLength(40);
    expect(new Set(events.map((e) => e["caller"]))).toEqual(new Set(["host-a", "host-b"]));
  }, 60_000);

  it("skillbox audit verify --postgres finds an edited or deleted row", async () => {
    const cli = (...a: string[]) => spawnSync(process.execPath, [BIN, "audit", ...a, "--postgres", url], { encoding: "utf8" });
    expect(cli("verify").status).toBe(0);
    const review = JSON.parse(cli("review", "--session", "host-a", "--json").stdout) as { skills: { skill: string; calls: number }[] }[];
    expect(review[0]?.skills.find((s) => s.skill === "word-stats")?.calls).toBe(80);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`UPDATE skillbox_audit SET line = replace(line, '"event":"', '"event":"x') WHERE seq = 10`);
      const edited = cli("verify");
      expect(edited.status).toBe(1);
      expect(edited.stdout).toMatch(/line 11 .*prev hash does not match/);
      await c.query(`UPDATE skillbox_audit SET line = replace(line, '"event":"x', '"event":"') WHERE seq = 10`);
      expect(cli("verify").status).toBe(0);
      await c.query("DELETE FROM skillbox_audit WHERE seq = 20");
      expect(cli("verify").status).toBe(1);
    } finally {
      await c.end();
    }
  });

  it("a database that cannot be reached never fails a call; the problem is reported", async () => {
    const warnings: string[] = [];
    const host = await SkillHost.open({
      skillsDir: EXAMPLE_SKILLS,
      workspace: tempDir(),
      audit: { file: join(tempDir(), "a.jsonl"), postgres: "postgres://nobody@127.0.0.1:1/none" },
      workers: 1,
      onWarning: (m) => warnings.push(m),
    });
    const r = await host.call("word-stats", { text: "still works" });
    await host.close();
    expect(r.ok).toBe(true);
    expect(warnings.join("\n")).toMatch(/cannot write the security log to PostgreSQL .*the log file .* has every event/);
  });
});

describe.skipIf("skip" in server)("PostgreSQL faults (a real server, restarted and frozen)", () => {
  const srv = "url" in server ? server : undefined;
  const WRITER = join(ROOT, "test", "fixtures", "audit-writer.mjs");
  const DIST = join(ROOT, "dist", "src", "index.js");

  async function rowsByCaller(url: string, table: string): Promise<Map<string, number>> {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    c.on("error", () => undefined);
    try {
      await c.connect();
      const r = await c.query<{ caller: string; n: string }>(`SELECT caller, count(*) AS n FROM ${table} GROUP BY caller`);
      return new Map(r.rows.map((x) => [x.caller, Number(x.n)]));
    } catch {
      return new Map();
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  it("two host processes writing while the server restarts both stay up, and the table ends with every event the files have", async () => {
    const url = srv!.url;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("DROP TABLE IF EXISTS skillbox_audit");
    await c.end();
    const dir = tempDir();
    const files = [join(dir, "a.jsonl"), join(dir, "b.jsonl")];
    const stderr: string[] = [];
    const exits = files.map(
      (file) =>
        new Promise<number>((resolve) => {
          const child = spawn(process.execPath, ["--no-node-snapshot", WRITER, DIST, url, file, "1200", "pg-events"], { stdio: ["ignore", "ignore", "pipe"] });
          child.stderr.on("data", (d: Buffer) => stderr.push(d.toString()));
          child.on("exit", (code) => resolve(code ?? 1));
        }),
    );
    // Both are writing through the table before the server goes.
    for (let seen = new Map<string, number>(); [...seen.values()].filter((n) => n >= 50).length < 2; seen = await rowsByCaller(url, "skillbox_audit")) {
      await new Promise((r) => setTimeout(r, 50));
    }
    srv!.restart!();
    expect(await Promise.all(exits)).toEqual([0, 0]);
    const fileEvents = files.flatMap((f) => readEvents(f)).filter((e) => e["event"] === "call.start");
    expect(fileEvents).toHaveLength(2400);
    const lines = await readPgLines(url);
    const tableIds = lines.map((l) => String((JSON.parse(l) as Record<string, unknown>)["callId"]));
    expect(new Set(tableIds)).toEqual(new Set(fileEvents.map((e) => String(e["callId"]))));
    expect(tableIds).toHaveLength(2400); // each once: nothing re-sent twice
    expect(verifyAuditText(lines.join("\n") + "\n")).toMatchObject({ ok: true });
    const warnings = stderr.join("");
    expect(warnings).toMatch(/cannot write the security log to PostgreSQL .*the log file .*a\.jsonl|b\.jsonl has every event/);
    expect(warnings).toMatch(/PostgreSQL is writable again/);
  }, 120_000);

  it("a frozen server (SIGSTOP): close() returns within its bound, says what it could not send, and the next host sends it", async () => {
    const url = srv!.url;
    const dir = tempDir();
    const file = join(dir, "a.jsonl");
    const warnings: string[] = [];
    const log = new AuditLog({ file, postgres: url, table: "frozen_audit", postgresCloseTimeoutMs: 1500, onError: (w) => warnings.push(w) });
    for (let i = 0; i < 20; i++) log.event("call.start", { callId: `before-${i}`, skill: "s", caller: "frozen", trust: "untrusted", session: null });
    await log.flush();
    const pids = srv!.pids!();
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    let closeMs: number;
    try {
      for (let i = 0; i < 20; i++) log.event("call.start", { callId: `during-${i}`, skill: "s", caller: "frozen", trust: "untrusted", session: null });
      const t0 = performance.now();
      await log.close();
      closeMs = performance.now() - t0;
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    expect(closeMs).toBeLessThan(1500 + 1500);
    expect(warnings.join("\n")).toMatch(/\d+ security log event\(s\) could not be sent to PostgreSQL within 1500 ms; they are in .*a\.jsonl/);
    // The next host that opens this log sends what was kept.
    const next = new AuditLog({ file, postgres: url, table: "frozen_audit", onError: () => undefined });
    await next.flush();
    await next.close();
    const ids = (await readPgLines(url, "frozen_audit")).map((l) => String((JSON.parse(l) as Record<string, unknown>)["callId"]));
    for (let i = 0; i < 20; i++) expect(ids).toContain(`during-${i}`);
  }, 60_000);

  it("the table has indexes for session, skill, time and call lookups", async () => {
    const c = new pg.Client({ connectionString: srv!.url });
    await c.connect();
    try {
      const r = await c.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 'skillbox_audit'");
      const defs = r.rows.map((x) => x.indexdef).join("\n");
      for (const col of ["session", "skill", '("time")|\\(time\\)', "call_id"]) expect(defs).toMatch(new RegExp(col));
    } finally {
      await c.end();
    }
  });
});
