/** 10 KB of input and output through validation, the boundary (JSON copies) and the output cap. */
import { join } from "node:path";
import { SkillHost } from "../src/index.js";
import { fixtures, rawCall, rawPrepare, time, type Row } from "./lib.js";

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const data = "y".repeat(10 * 1024);
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "a.jsonl"), onWarning: () => undefined });
  const v = await time(n, () => host.call("echo", { data }), 4);
  await host.close();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = await rawPrepare("export default async (i) => ({ data: i.data });");
    const s = performance.now();
    await rawCall(p, { data });
    samples.push(performance.now() - s);
    p.isolate.dispose();
  }
  samples.sort((a, b) => a - b);
  return [
    {
      scenario: "10 KB input and 10 KB output, pooled",
      value: v,
      baseline: { label: "raw: call into a prepared isolate with the same 10 KB", value: { p50: samples[n >> 1]!, p99: samples[Math.floor(n * 0.99)]!, n } },
    },
  ];
}
