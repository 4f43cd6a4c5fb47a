/** Calls per second with 1, 8 and 64 concurrent callers, a fresh isolate per call, on all cores. */
import { cpus } from "node:os";
import { join } from "node:path";
import { SkillHost } from "../src/index.js";
import { fixtures, rawFresh, type Row } from "./lib.js";

async function rate(concurrency: number, total: number, fn: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await fn();
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "a.jsonl"), workers: cpus().length, onWarning: () => undefined });
  const rows: Row[] = [];
  for (const c of [1, 8, 64]) {
    await rate(c, 50, () => host.call("noop", { n: 1 }));
    const v = await rate(c, n, () => host.call("noop", { n: 1 }));
    const raw = await rate(c, n, () => rawFresh());
    rows.push({
      scenario: `throughput, noop skill, ${c} concurrent caller(s), fresh isolate per call`,
      value: { p50: v, p99: v, n },
      unit: "calls/s",
      baseline: { label: "raw isolated-vm fresh isolate per call, same concurrency, in one process", value: { p50: raw, p99: raw, n } },
      ...(c > 1 ? { target: "≥ 400 calls/s", met: v >= 400 } : {}),
    });
  }
  await host.close();
  return rows;
}
