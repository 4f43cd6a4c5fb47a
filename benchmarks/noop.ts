/** Noop skill through host.call, cold (no pool) and pooled, beside raw isolated-vm doing the same work. */
import { join } from "node:path";
import { SkillHost } from "../src/index.js";
import { fixtures, rawCall, rawFresh, rawPrepare, time, type Row } from "./lib.js";

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const raw = await time(n, () => rawFresh());
  const cold = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "cold.jsonl"), pool: { perSkill: 0 }, onWarning: () => undefined });
  const coldStats = await time(n, () => cold.call("noop", { n: 1 }));
  await cold.close();

  // Pooled: calls paced so the pool keeps up (preparing an isolate takes ~2 ms of CPU).
  const pooled = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "pooled.jsonl"), onWarning: () => undefined });
  const pooledStats = await time(n, () => pooled.call("noop", { n: 1 }), 4);
  await pooled.close();
  // Raw equivalent of the pooled path: a call into an isolate prepared ahead (untimed), then dispose.
  const rawPooled = await time(n, async () => undefined, 0).then(async () => {
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = await rawPrepare();
      const s = performance.now();
      await rawCall(p, { n: 1 });
      samples.push(performance.now() - s);
      p.isolate.dispose();
    }
    samples.sort((a, b) => a - b);
    return { p50: samples[n >> 1]!, p99: samples[Math.floor(n * 0.99)]!, n };
  });
  return [
    {
      scenario: "noop skill, cold path (pool off): fresh isolate in a worker process + validation, authorize, audit log, retry/timeout",
      value: coldStats,
      baseline: { label: "raw isolated-vm in-process: new Isolate + context + module + call + dispose", value: raw },
      target: "p50 ≤ 1.3× raw",
      met: coldStats.p50 <= 1.3 * raw.p50,
    },
    {
      scenario: "noop skill, pooled path (isolate prepared ahead, used once), paced 4 ms apart",
      value: pooledStats,
      baseline: { label: "raw isolated-vm in-process: call into a prepared isolate", value: rawPooled },
      target: "p50 ≤ 0.5 ms, p99 ≤ 2 ms",
      met: pooledStats.p50 <= 0.5 && pooledStats.p99 <= 2,
    },
  ];
}
