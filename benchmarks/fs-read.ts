/** A skill reading one 1 KB file through ctx.fs (checked, symlink-resolved, logged). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SkillHost } from "../src/index.js";
import { fixtures, rawCall, rawPrepare, time, type Row } from "./lib.js";

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "a.jsonl"), onWarning: () => undefined });
  const v = await time(n, () => host.call("reader", {}, { caller: { id: "b", trust: "user-verified" } }), 4);
  await host.close();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = await rawPrepare("export default async (text) => ({ len: text.length });");
    const s = performance.now();
    await rawCall(p, readFileSync(join(root, "f.txt"), "utf8"));
    samples.push(performance.now() - s);
    p.isolate.dispose();
  }
  samples.sort((a, b) => a - b);
  return [
    {
      scenario: "skill reading one 1 KB file through ctx.fs, pooled",
      value: v,
      baseline: { label: "raw: readFileSync + call into a prepared isolate", value: { p50: samples[n >> 1]!, p99: samples[Math.floor(n * 0.99)]!, n } },
    },
  ];
}
