import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { cpuTicks, fixture, sleep, waitFor, writeSkill } from "../helpers.js";

const HOSTILE: Record<string, [string | string[], string]> = {
  "loop-top-level": ["E_TIMEOUT", "while (true) {} export default async () => 1;"],
  "loop-sync": ["E_TIMEOUT", "export default async () => { while (true) {} };"],
  "spin-after-await": ["E_TIMEOUT", "export default async () => { await Promise.resolve(); await null; while (true) {} };"],
  // A microtask storm allocates as it spins: whichever cap it meets first ends it.
  "spin-in-microtasks": [["E_TIMEOUT", "E_MEMORY_LIMIT"], "export default async () => { const f = () => Promise.resolve().then(f); f(); await new Promise(() => {}); };"],
  "never-settles": ["E_TIMEOUT", "export default async () => new Promise(() => {});"],
  "memory-bomb": ["E_MEMORY_LIMIT", "export default async () => { const a = []; for (;;) a.push(new Array(1e5).fill('x' + a.length)); };"],
  "memory-after-await": ["E_MEMORY_LIMIT", "export default async () => { await null; const keep = []; for (let i = 0; ; i++) keep.push(new Array(1e5).fill(i)); };"],
  "getter-on-result": ["E_TIMEOUT", "export default async () => ({ get boom() { while (true) {} } });"],
  "tojson-on-result": ["E_TIMEOUT", "export default async () => ({ toJSON() { for (;;) {} } });"],
  "proxy-result": ["E_TIMEOUT", "export default async () => new Proxy({}, { ownKeys() { for (;;) {} }, get() { for (;;) {} } });"],
  "getter-on-thrown": ["E_TIMEOUT", "export default async () => { throw { get message() { while (true) {} }, get name() { while (true) {} } }; };"],
  "thenable-result": ["E_TIMEOUT", "export default async () => ({ then() { for (;;) {} } });"],
};

describe("limits: runaway skills end as E_TIMEOUT / E_MEMORY_LIMIT and the host keeps serving", () => {
  let host: SkillHost;
  beforeAll(async () => {
    const fx = fixture();
    for (const [name, [code, src]] of Object.entries(HOSTILE)) {
      // A memory bomb gets all the time its trust level allows (it needs a few ms), so the memory cap ends it, not a race with the clock.
      writeSkill(fx.skills, name, `limits: { timeoutMs: ${code === "E_MEMORY_LIMIT" ? 2000 : 300}, memoryMb: 16 }\n`, { "index.js": src });
    }
    writeSkill(fx.skills, "spin-long", "limits: { timeoutMs: 30000 }\nretry: { attempts: 1 }\n", { "index.js": "export default async () => { while (true) {} };" });
    writeSkill(fx.skills, "quick", "", { "index.js": "export default async (i) => ({ echo: i.v });" });
    writeSkill(fx.skills, "bad-output", "", { "index.js": "export default async () => ({ n: 10n });" });
    host = await fx.open({ workers: 2 });
  });
  afterAll(async () => host.close());

  // Each ends with its own code (a hang would fail by the test's timeout), and the host serves the next call.
  it.each(Object.entries(HOSTILE))("%s", async (name, [code]) => {
    const r = await host.call(name, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect([code].flat()).toContain(r.error.code);
    const quick = await host.call("quick", { v: name });
    expect(quick.ok && quick.output).toEqual({ echo: name });
  });

  it("the CPU goes quiet afterwards: no worker keeps burning", async () => {
    // Measured over half-second windows until one is quiet (kills and the idle watchdog take a moment).
    let busiest = Number.POSITIVE_INFINITY;
    await waitFor("the workers to go quiet", async () => {
      const pids = host.sandboxStats().workerPids;
      const before = pids.map(cpuTicks);
      await sleep(500);
      busiest = Math.max(0, ...pids.map((p, i) => cpuTicks(p) - before[i]!));
      return busiest < 15; // < 30% of a core over the window
    });
    expect(busiest).toBeLessThan(15);
  });

  it("while a runaway skill spins, the host answers other calls", async () => {
    let settled = false;
    const hostile = host.call("spin-long", {}, { caller: { id: "t", trust: "trusted" } }).finally(() => (settled = true));
    await waitFor("the runaway call to be running in a worker", () => host.sandboxStats().busyPids.length >= 1);
    const quick = await host.call("quick", { v: "meanwhile" });
    expect(quick.ok && quick.output).toEqual({ echo: "meanwhile" });
    // 30 s of timeout: still spinning whatever the machine's load.
    expect(settled).toBe(false);
    // End it now instead of waiting out its timeout: its worker is the only busy one.
    const busy = host.sandboxStats().busyPids;
    expect(busy).toHaveLength(1);
    process.kill(busy[0]!, "SIGKILL");
    const r = await hostile;
    expect(!r.ok && r.error.code).toBe("E_SKILL_ERROR");
  });

  it("a result that is not JSON is E_OUTPUT_INVALID", async () => {
    const r = await host.call("bad-output", {});
    expect(!r.ok && r.error.code).toBe("E_OUTPUT_INVALID");
  });
});
