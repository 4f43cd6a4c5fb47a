/** RSS of the host and its workers after 1,000 and after 10,000 calls: no leak. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SkillHost } from "../src/index.js";
import { fixtures, type Row } from "./lib.js";

function rssMb(pids: number[]): number {
  let kb = process.memoryUsage().rss / 1024;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb / 1024;
}

export async function run(total: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "a.jsonl"), onWarning: () => undefined });
  let after1k = 0;
  for (let i = 1; i <= total; i++) {
    await host.call(i % 2 ? "noop" : "reader", { n: i }, { caller: { id: "m", trust: "user-verified" } });
    if (i === Math.min(1000, total)) after1k = rssMb(host.sandboxStats().workerPids);
  }
  const end = rssMb(host.sandboxStats().workerPids);
  await host.close();
  return [
    {
      scenario: `RSS (host + workers) after 1,000 calls → after ${total.toLocaleString("en")} calls`,
      value: { p50: end - after1k, p99: end, n: total },
      unit: "MB",
      target: "growth ≤ 50 MB",
      met: end - after1k <= 50,
    },
  ];
}
