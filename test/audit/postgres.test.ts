import { spawnSync } from "node:child_process";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillHost, verifyAuditText } from "../../dist/src/index.js";
import { readPgLines } from "../../dist/src/audit/pg-sink.js";
import { BIN, EXAMPLE_SKILLS, readEvents, tempDir } from "../helpers.js";
import { startPostgres, type PgServer } from "../pg-server.js";

const server: PgServer = await startPostgres();
if ("skip" in server) console.warn(`\n⚠ PostgreSQL audit tests SKIPPED: ${server.skip}\n`);

describe.skipIf("skip" in server)("PostgreSQL audit sink (a real server)", () => {
  const url = "url" in server ? server.url : "";
  afterAll(() => {
    if ("stop" in server) server.stop();
  });
  beforeAll(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("DROP TABLE IF EXISTS skillbox_audit");
    await c.end();
  });

  async function session(file: string, calls: number, caller: string) {
    const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: tempDir(), audit: { file, postgres: url }, workers: 1, onWarning: () => undefined });
    await Promise.all(Array.from({ length: calls }, (_, i) => host.call(i % 5 === 0 ? "read-notes" : "word-stats", { text: `t${i}`, query: "x" }, { caller: { id: caller, trust: "untrusted", session: caller } })));
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
    const host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: tempDir(), audit: { file: join(tempDir(), "a.jsonl"), postgres: "postgres://nobody@127.0.0.1:1/none" }, workers: 1, onWarning: (m) => warnings.push(m) });
    const r = await host.call("word-stats", { text: "still works" });
    await host.close();
    expect(r.ok).toBe(true);
    expect(warnings.join("\n")).toMatch(/cannot write the security log to PostgreSQL/);
  });
});
