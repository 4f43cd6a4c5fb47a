import { statSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { SKILL_LOG_MAX_BYTES, SKILL_LOG_MAX_EVENTS } from "../../dist/src/execution/log-budget.js";
import { fixture, writeSkill } from "../helpers.js";

let host: SkillHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

const CHATTY = `export default async (i, ctx) => {
  const pad = "x".repeat(i.fieldChars);
  for (let n = 0; n < i.lines; n++) ctx.log.info("line " + n, { pad });
  // Log lines are fire-and-forget; a round trip to the host after them means all have arrived.
  await new Promise((resolve) => setTimeout(resolve, 1));
  return { logged: i.lines };
};`;

describe("a skill cannot flood the security log", () => {
  it("ctx.log: at most 1000 lines per call, then one skill.log.truncated; the call still succeeds", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "chatty", "", { "index.js": CHATTY });
    host = await fx.open();
    const r = await host.call("chatty", { lines: 1500, fieldChars: 10 });
    expect(r).toMatchObject({ ok: true });
    const events = await fx.events();
    expect(events.filter((e) => e["event"] === "skill.log")).toHaveLength(SKILL_LOG_MAX_EVENTS);
    const truncated = events.filter((e) => e["event"] === "skill.log.truncated");
    expect(truncated).toHaveLength(1);
    expect(truncated[0]).toMatchObject({ keptEvents: SKILL_LOG_MAX_EVENTS, maxEvents: SKILL_LOG_MAX_EVENTS, maxBytes: SKILL_LOG_MAX_BYTES, level: "warn" });
    // The budget is per call: the next call logs again.
    await host.call("chatty", { lines: 3, fieldChars: 10 });
    expect((await fx.events()).filter((e) => e["event"] === "skill.log")).toHaveLength(SKILL_LOG_MAX_EVENTS + 3);
  });

  it("ctx.log: large fields are previewed, and the byte budget (1 MiB) holds", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "chatty", "", { "index.js": CHATTY });
    host = await fx.open();
    const before = statSync(fx.auditFile).size;
    const r = await host.call("chatty", { lines: 400, fieldChars: 7000 });
    expect(r).toMatchObject({ ok: true });
    const events = await fx.events();
    const lines = events.filter((e) => e["event"] === "skill.log");
    expect(lines.length).toBeGreaterThan(100);
    expect(lines.length).toBeLessThan(SKILL_LOG_MAX_EVENTS);
    expect(events.filter((e) => e["event"] === "skill.log.truncated")).toHaveLength(1);
    // 400 × 7 KB would be 2.8 MB; what was written stays near the budget.
    expect(statSync(fx.auditFile).size - before).toBeLessThan(2 * SKILL_LOG_MAX_BYTES);

    const big = await host.call("chatty", { lines: 1, fieldChars: 100_000 });
    expect(big).toMatchObject({ ok: true });
    const last = (await fx.events()).filter((e) => e["event"] === "skill.log").at(-1)!;
    expect(last["fields"]).toMatchObject({ truncated: true });
  });

  // 250 K characters: more in all is refused before any check (test/adversarial/exec-arg-flood.test.ts)
  it("a denied ctx.exec with hundreds of kilobytes of arguments logs a bounded event, with the full lengths noted", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "spray", "", {
      "index.js": `export default async (i, ctx) => { const args = Array.from({ length: 250 }, (_, n) => n + "-" + "a".repeat(990)); await ctx.exec("cat", args); };`,
    });
    host = await fx.open();
    const before = statSync(fx.auditFile).size;
    const r = await host.call("spray", {}, { caller: { trust: "system" } });
    expect(!r.ok && r.error).toMatchObject({ code: "E_PERMISSION_DENIED" });
    expect(JSON.stringify(r).length).toBeLessThan(10_000);
    const events = await fx.events();
    const cap = events.find((e) => e["event"] === "capability" && e["decision"] === "deny")!;
    expect(String(cap["target"]).length).toBeLessThan(1100);
    expect(cap["targetLength"]).toBeGreaterThan(240_000);
    const exec = events.find((e) => e["event"] === "process.exec")!;
    expect(exec["args"]).toHaveLength(32);
    expect(exec).toMatchObject({ argsCount: 250 });
    expect(statSync(fx.auditFile).size - before).toBeLessThan(100_000);
  });
});
