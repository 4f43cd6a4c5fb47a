import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

/**
 * Red team: argument patterns are matched on the host's main thread by a linear but pure-JavaScript
 * engine. 256 arguments of 64 KB (16 MB) against `/^[^]*$/` held the host's event loop for about
 * 2 s per exec (declared rule, then ceiling), and a skill can have 16 execs in flight: every other
 * caller's call waited. A manifest with many rules for one command multiplies the work. Now the
 * arguments of one exec are capped in size, and the matching one decision may do is bounded.
 */
const SCAN = Array.from({ length: 12 }, () => `    - { command: echo, args: ["/^[^]*x$/"] }`).join("\n");
const RULES = `
${SCAN}
    - { command: echo, args: ["/^[^]*$/"] }`;

const FLOOD = `export default async function (input, ctx) {
  const big = "A".repeat(65536);
  const args = Array.from({ length: input.count }, () => big);
  const runs = Array.from({ length: 16 }, () => ctx.exec("echo", args).then(() => "ran", (e) => e.message));
  return await Promise.all(runs);
}`;

describe("ctx.exec: huge arguments cannot hold the host's event loop", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\nprocess: { sandbox: "off" }\ntrust:\n  trusted:\n    process:${RULES}\n`);
    writeSkill(fx.skills, "flood", `permissions:\n  process:${RULES}\nlimits: { timeoutMs: 20000 }\n`, { "index.js": FLOOD });
    writeSkill(fx.skills, "echo-ok", `permissions:\n  process:\n    - { command: echo, args: ["/^[^]*$/"] }\n`, {
      "index.js": "export default async (input, ctx) => (await ctx.exec('echo', ['-n', input.word])).stdout;",
    });
    host = await fx.open({ policy: join(fx.root, "policy.yaml") });
  });
  afterAll(async () => host.close());
  const trusted = { caller: { id: "rt", trust: "trusted" as const } };

  it("refuses 16 MB of arguments before matching any of them (a failure the skill can catch)", async () => {
    const r = await host.call("flood", { count: 256 }, trusted);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const out = r.output as string[];
    expect(out).toHaveLength(16);
    for (const m of out) expect(m).toMatch(/args are 16777216 characters in all, more than 262144; pass large data on stdin/);
  });

  it("refuses arguments whose matching against many rules would exceed the bound (rule arguments)", async () => {
    // 4 x 64 KB is within the size cap, but 12 declared rules scan all of it before the 13th matches
    const r = await host.call("flood", { count: 4 }, trusted);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe("E_PERMISSION_DENIED");
    expect((r.error.details as { rule?: string }).rule).toBe("arguments");
    const events = await fx.events();
    const denied = events.filter((e) => e["event"] === "process.exec" && e["decision"] === "deny" && e["rule"] === "arguments");
    expect(denied.length).toBeGreaterThan(0);
  });

  it("still runs ordinary arguments", async () => {
    const r = await host.call("echo-ok", { word: "fine" }, trusted);
    expect(r).toMatchObject({ ok: true, output: "fine" });
  });
});
