/**
 * A sandbox worker's start (spawn to "ready": node, isolated-vm loaded), unconfined and inside
 * bubblewrap. Runnable alone: npm run build && npx node --no-node-snapshot dist/benchmarks/worker-start.js [n]
 */
import { detectBwrap } from "../src/capabilities/confine.js";
import { bwrapWorker } from "../src/sandbox/confine-worker.js";
import { Supervisor, type SupervisorOptions } from "../src/sandbox/supervisor.js";
import { stats, type Row, type Stats } from "./lib.js";

async function starts(n: number, wrap: SupervisorOptions["wrap"]): Promise<Stats> {
  const samples: number[] = [];
  for (let i = 0; i < n + 2; i++) {
    const sup = new Supervisor({ workers: 1, ...(wrap ? { wrap } : {}) });
    const t0 = performance.now();
    await sup.warm();
    if (i >= 2) samples.push(performance.now() - t0);
    await sup.close();
  }
  return stats(samples);
}

export async function run(n: number): Promise<Row[]> {
  const plain = await starts(n, undefined);
  const bwrap = await detectBwrap();
  if (!bwrap.available) return [{ scenario: "worker start, unconfined (no bwrap here)", value: plain }];
  const confined = await starts(n, bwrapWorker(bwrap.path));
  return [{ scenario: "worker start inside bubblewrap", value: confined, baseline: { label: "unconfined", value: plain } }];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 20);
  for (const row of await run(n)) {
    const f = (s: Stats) => `p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms (n=${s.n})`;
    console.log(`${row.scenario}: ${f(row.value)}${row.baseline ? `; ${row.baseline.label}: ${f(row.baseline.value)}` : ""}`);
  }
}
