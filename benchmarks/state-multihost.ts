/**
 * Three host processes share one PostgreSQL state store; 16 callers call through all three at
 * once. Shows that a per-caller rate limit holds exactly across the hosts (each caller gets its
 * bucket's size, no more, whichever host it reaches) and the throughput of the three.
 * Run alone: `npm run build && node --no-node-snapshot dist/benchmarks/state-multihost.js`.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SkillHost } from "../src/index.js";
import { fixtures, type Row } from "./lib.js";
import { startPostgres } from "./pg.js";

const HOSTS = 3;
const CALLERS = 16;

interface ChildReport {
  ok: Record<string, number>;
  limited: number;
  other: string[];
  calls: number;
  ms: number;
}

/** One host process: every caller calls `perCaller` times, all callers at once; reports per-caller successes. */
async function child(config: { skills: string; root: string; policy: string; state: string; perCaller: number; host: number }): Promise<void> {
  const host = await SkillHost.open({
    skillsDir: config.skills,
    workspace: config.root,
    policy: config.policy,
    state: config.state,
    audit: join(config.root, `a-${config.host}.jsonl`),
    workers: 2,
    onWarning: () => undefined,
  });
  // Start together: the parent says go on stdin once every host is open.
  process.stdout.write("ready\n");
  await new Promise<void>((r) => process.stdin.once("data", () => r()));
  const report: ChildReport = { ok: {}, limited: 0, other: [], calls: 0, ms: 0 };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, c) => {
      const id = `caller-${c}`;
      for (let i = 0; i < config.perCaller; i++) {
        const r = await host.call("noop", { n: i }, { caller: { id } });
        report.calls++;
        if (r.ok) report.ok[id] = (report.ok[id] ?? 0) + 1;
        else if (r.error.code === "E_RATE_LIMITED") report.limited++;
        else report.other.push(r.error.code);
      }
    }),
  );
  report.ms = performance.now() - t0;
  await host.close();
  process.stdout.write(JSON.stringify(report) + "\n");
}

async function hosts(config: Omit<Parameters<typeof child>[0], "host">): Promise<{ reports: ChildReport[]; wallMs: number }> {
  const script = fileURLToPath(import.meta.url);
  const procs = Array.from({ length: HOSTS }, (_, h) =>
    spawn(process.execPath, ["--no-node-snapshot", script, "child", JSON.stringify({ ...config, host: h })], { stdio: ["pipe", "pipe", "inherit"] }),
  );
  const outputs = procs.map(() => "");
  const ready = procs.map(
    (p, i) =>
      new Promise<void>((resolve) =>
        p.stdout.on("data", (d: Buffer) => {
          outputs[i] = (outputs[i] ?? "") + String(d);
          if (outputs[i]!.includes("ready\n")) resolve();
        }),
      ),
  );
  const done = procs.map((p) => new Promise<void>((resolve) => p.on("exit", () => resolve())));
  await Promise.all(ready);
  const t0 = performance.now();
  for (const p of procs) p.stdin.write("go\n");
  await Promise.all(done);
  const wallMs = performance.now() - t0;
  return { reports: outputs.map((o) => JSON.parse(o.split("\n").filter((l) => l.startsWith("{"))[0]!) as ChildReport), wallMs };
}

export async function run(n: number): Promise<Row[]> {
  const pg = await startPostgres();
  if ("skip" in pg) {
    process.stderr.write(`multi-host benchmark skipped: ${pg.skip}\n`);
    return [];
  }
  const rows: Row[] = [];
  try {
    const { root, skills } = fixtures();
    const perCaller = Math.max(10, Math.round(n / 10));
    const limit = Math.max(1, Math.floor((perCaller * HOSTS) / 3));
    // 1: a limit below demand: each caller must get exactly `limit` calls through, over all hosts.
    const limited = join(root, "limited.yaml");
    writeFileSync(limited, `version: multihost\nrateLimits:\n  - { per: caller, limit: ${limit}/hour }\nconcurrency: { perCaller: 4 }\n`);
    const a = await hosts({ skills, root, policy: limited, state: pg.url, perCaller });
    const okPerCaller = Array.from({ length: CALLERS }, (_, c) => a.reports.reduce((s, r) => s + (r.ok[`caller-${c}`] ?? 0), 0));
    const exact = okPerCaller.every((x) => x === limit);
    const calls = a.reports.reduce((s, r) => s + r.calls, 0);
    const other = a.reports.flatMap((r) => r.other);
    rows.push({
      scenario: `${HOSTS} hosts on one PostgreSQL, ${CALLERS} callers × ${perCaller * HOSTS} calls, limit ${limit}/hour per caller: calls admitted per caller (min–max ${Math.min(...okPerCaller)}–${Math.max(...okPerCaller)}; ${a.reports.reduce((s, r) => s + r.limited, 0)} E_RATE_LIMITED, ${other.length} other)`,
      value: { p50: calls / (a.wallMs / 1000), p99: calls / (a.wallMs / 1000), n: calls },
      unit: "calls/s",
      target: `every caller exactly ${limit}`,
      met: exact,
    });
    // 2: nothing refused: the throughput of admitted calls, per host and together.
    const open = join(root, "open.yaml");
    writeFileSync(open, "version: multihost-open\nrateLimits:\n  - { per: caller, limit: 1000000/sec }\nconcurrency: { perCaller: 64 }\n");
    const b = await hosts({ skills, root, policy: open, state: pg.url, perCaller });
    const admitted = b.reports.reduce((s, r) => s + Object.values(r.ok).reduce((x, y) => x + y, 0), 0);
    rows.push({
      scenario: `${HOSTS} hosts on one PostgreSQL, ${CALLERS} callers, every call admitted: throughput of the three together`,
      value: { p50: admitted / (b.wallMs / 1000), p99: admitted / (b.wallMs / 1000), n: admitted },
      unit: "calls/s",
    });
    for (const [i, r] of b.reports.entries())
      rows.push({ scenario: `  host ${i + 1} of ${HOSTS}`, value: { p50: r.calls / (r.ms / 1000), p99: r.calls / (r.ms / 1000), n: r.calls }, unit: "calls/s" });
  } finally {
    pg.stop();
  }
  return rows;
}

if (process.argv[2] === "child") {
  await child(JSON.parse(process.argv[3]!) as Parameters<typeof child>[0]);
  process.exit(0);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const rows = await run(Number(process.env["BENCH_N"] ?? 300));
  console.log("| scenario | value | target |\n|---|---|---|");
  for (const r of rows) console.log(`| ${r.scenario} | ${Math.round(r.value.p50)} calls/s | ${r.target ? `${r.target} ${r.met ? "✔" : "✖"}` : "—"} |`);
  process.exit(rows.every((r) => r.met !== false) ? 0 : 1);
}
