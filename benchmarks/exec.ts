/**
 * Per-exec cost: a skill running `true` through ctx.exec, confined by bubblewrap (policy
 * process.sandbox: auto) and unconfined (off), beside a bare child_process spawn of the same
 * program. Self-contained: `node --no-node-snapshot dist/benchmarks/exec.js` runs it alone.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { SkillHost } from "../src/index.js";
import { detectBwrap } from "../src/capabilities/confine.js";
import { stats, time, type Row } from "./lib.js";

function workspace(sandbox: "auto" | "off"): { root: string; skills: string; policy: string } {
  const root = mkdtempSync(join(tmpdir(), "skillbox-bench-exec-"));
  const skills = join(root, "skills");
  mkdirSync(join(skills, "runner"), { recursive: true });
  mkdirSync(join(root, "notes"));
  for (let i = 0; i < 50; i++) writeFileSync(join(root, "notes", `n${i}.md`), "note");
  writeFileSync(
    join(skills, "runner", "skill.yaml"),
    'name: runner\nversion: 1.0.0\ndescription: runs true\npermissions:\n  files: [ { path: "${workspace}/notes/**", access: [read, list] } ]\n  process: [ { command: "true" } ]\n',
  );
  writeFileSync(join(skills, "runner", "index.js"), 'export default async (input, ctx) => (await ctx.exec("true", [])).exitCode;');
  const policy = join(root, "policy.yaml");
  writeFileSync(policy, `version: 1\nprocess: { sandbox: ${sandbox} }\ntrust:\n  trusted:\n    process: [ { command: "true" } ]\n`);
  return { root, skills, policy };
}

async function viaHost(n: number, sandbox: "auto" | "off") {
  const { root, skills, policy } = workspace(sandbox);
  const host = await SkillHost.open({ skillsDir: skills, workspace: root, policy, audit: join(root, "a.jsonl"), onWarning: () => undefined });
  const v = await time(n, async () => {
    const r = await host.call("runner", {}, { caller: { id: "b", trust: "trusted" } });
    if (!r.ok) throw new Error(r.error.message);
  });
  await host.close();
  return v;
}

function spawnOnce(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: "ignore", env: { PATH: "/usr/bin:/bin" } });
    c.on("error", reject);
    c.on("close", () => resolve());
  });
}

export async function run(n: number): Promise<Row[]> {
  n = Math.min(n, 200);
  const raw: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await spawnOnce("/usr/bin/true", []);
    raw.push(performance.now() - s);
  }
  const baseline = { label: "raw: child_process.spawn(true)", value: stats(raw) };
  const rows: Row[] = [{ scenario: "ctx.exec(true), unconfined (sandbox: off)", value: await viaHost(n, "off"), baseline }];
  const bwrap = await detectBwrap();
  if (bwrap.available) rows.push({ scenario: "ctx.exec(true), confined by bwrap (50-file grant walked per run)", value: await viaHost(n, "auto"), baseline });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const r of await run(Number(process.env["BENCH_N"] ?? 100))) {
    console.log(`${r.scenario}: p50 ${r.value.p50.toFixed(2)} ms, p99 ${r.value.p99.toFixed(2)} ms (${r.baseline?.label}: p50 ${r.baseline?.value.p50.toFixed(2)} ms)`);
  }
}
