import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { cpuTicks, fixture, type Fixture, sleep, writeSkill } from "../helpers.js";

/** Busy-waits `ms` inside the isolate (no timers there). */
const burn = (ms: number) => `{ const t0 = Date.now(); while (Date.now() - t0 < ${ms}) {} }`;

describe("one attempt per worker: a skill that crashes its worker hurts nobody else", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    // Grows a Set until V8 itself gives up (a fatal OOM aborts the whole worker process).
    writeSkill(fx.skills, "grow-set", "limits: { memoryMb: 32, timeoutMs: 2000 }\nretry: { attempts: 3, initialDelayMs: 10 }\n", {
      "index.js": "export default async () => { const s = new Set(); for (let i = 0; ; i++) s.add({ i }); };",
    });
    writeSkill(fx.skills, "bystander", "limits: { timeoutMs: 2000 }\n", { "index.js": `export default async (i) => { ${burn(300)} return { v: i.v }; };` });
    writeSkill(fx.skills, "spin", "limits: { timeoutMs: 1500 }\n", { "index.js": `export default async () => { ${burn(250)} return 1; };` });
    writeSkill(fx.skills, "big-output", "limits: { outputBytes: 1048576 }\n", { "index.js": "export default async (i) => 'é'.repeat(i.n);" });
    host = await fx.open({ workers: 2 });
  });
  afterAll(async () => host.close());

  it("a bystander's call in flight succeeds while another skill's worker dies of V8's fatal OOM", async () => {
    const bystander = host.call("bystander", { v: 1 });
    const attacker = host.call("grow-set", {});
    const [b, a] = await Promise.all([bystander, attacker]);
    expect(b.ok && b.output).toEqual({ v: 1 });
    expect(!a.ok && a.error.code).toBe("E_MEMORY_LIMIT");
    // Not retried: exhausting memory again would only crash more workers.
    expect(a.attempts).toBe(1);
    // The host answers the next call at once, on a replaced worker.
    const next = await host.call("bystander", { v: 2 });
    expect(next.ok && next.output).toEqual({ v: 2 });
  });

  it("the worker count bounds the attempts running at once; the rest wait in order and all succeed", async () => {
    let maxRunning = 0;
    let sawQueue = false;
    const calls = Array.from({ length: 6 }, () => host.call("spin", {}));
    let settled = false;
    void Promise.all(calls).then(() => (settled = true));
    while (!settled) {
      const s = host.sandboxStats();
      maxRunning = Math.max(maxRunning, s.inflight, s.busyPids.length);
      if (s.queued > 0) sawQueue = true;
      await sleep(5);
    }
    const results = await Promise.all(calls);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(maxRunning).toBeLessThanOrEqual(2);
    expect(sawQueue).toBe(true);
    // One spare worker is kept started beside the two that run attempts.
    expect(host.sandboxStats().workerPids.length).toBe(3);
  });

  it("the output cap applies to the real encoded bytes: 959,882 bytes under a 1 MiB cap pass, one byte over fails", async () => {
    // 'é' is two bytes in UTF-8; the JSON adds the two quotes.
    const big = (n: number) => host.call("big-output", { n }, { caller: { id: "t", trust: "user-verified" } });
    const ok = await big((959_882 - 2) / 2);
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(Buffer.byteLength(JSON.stringify(ok.output))).toBe(959_882);
    const exact = await big((1_048_576 - 2) / 2);
    expect(exact.ok).toBe(true);
    const over = await big((1_048_576 - 2) / 2 + 1);
    expect(!over.ok && over.error.code).toBe("E_OUTPUT_INVALID");
  });
});

describe("no skill code runs outside an attempt", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    // Module top level that costs 400 ms of CPU each time it is evaluated.
    writeSkill(fx.skills, "heavy-top", "limits: { timeoutMs: 2000 }\n", { "index.js": `${burn(400)}\nexport default async () => 'ok';` });
    host = await fx.open({ workers: 1 });
  });
  afterAll(async () => host.close());

  it("module top-level code is evaluated inside each attempt, under its deadline, never when the pool refills", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await host.call("heavy-top", {});
      expect(r.ok).toBe(true);
      // Pooled or not, the top level ran inside this call.
      expect(r.durationMs).toBeGreaterThanOrEqual(390);
    }
    const pids = host.sandboxStats().workerPids;
    const before = pids.map(cpuTicks);
    // Wait until the workers have prepared isolates for the next call again.
    while (host.sandboxStats().preparedKeys.length === 0) await sleep(10);
    // A window in which a refill that evaluated the top level would burn 30 ticks or more;
    // preparing (context, prelude, compile, link) costs a few.
    await sleep(300);
    const spent = pids.map((p, i) => cpuTicks(p) - before[i]!).reduce((a, b) => a + b, 0);
    expect(spent).toBeLessThan(15);
  });
});
