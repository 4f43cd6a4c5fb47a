import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { cpuTicks, fixture, sleep, writeSkill } from "../helpers.js";

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
    for (const [name, [, src]] of Object.entries(HOSTILE)) {
      writeSkill(fx.skills, name, "limits: { timeoutMs: 300, memoryMb: 16 }\n", { "index.js": src });
    }
    writeSkill(fx.skills, "quick", "", { "index.js": "export default async (i) => ({ echo: i.v });" });
    writeSkill(fx.skills, "bad-output", "", { "index.js": "export default async () => ({ n: 10n });" });
    host = await fx.open({ workers: 2 });
  });
  afterAll(async () => host.close());

  it.each(Object.entries(HOSTILE))("%s", async (name, [code]) => {
    const t0 = performance.now();
    const hostile = host.call(name, {});
    // While it runs, the host answers other calls.
    await sleep(50);
    const q0 = performance.now();
    const quick = await host.call("quick", { v: name });
    const quickMs = performance.now() - q0;
    expect(quick.ok && quick.output).toEqual({ echo: name });
    expect(quickMs).toBeLessThan(250);
    const r = await hostile;
    expect(r.ok).toBe(false);
    if (!r.ok) expect([code].flat()).toContain(r.error.code);
    // Ends near its deadline, not never.
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("the CPU goes quiet afterwards: no worker keeps burning", async () => {
    await sleep(700); // grace for kills and the idle-CPU watchdog
    const pids = host.sandboxStats().workerPids;
    const before = pids.map(cpuTicks);
    await sleep(1000);
    const after = pids.map(cpuTicks);
    const busiest = Math.max(...after.map((a, i) => a - before[i]!));
    expect(busiest).toBeLessThan(30); // < 30% of a core over one second
  });

  it("a result that is not JSON is E_OUTPUT_INVALID", async () => {
    const r = await host.call("bad-output", {});
    expect(!r.ok && r.error.code).toBe("E_OUTPUT_INVALID");
  });
});
