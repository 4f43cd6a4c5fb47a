/**
 * Per-call overhead of skillbox beside raw isolated-vm doing the same work in the same process.
 * Run with `npm run bench`. Prints a table and writes benchmarks/RESULTS.md.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import ivm from "isolated-vm";
import { authorize, builtinPolicy, parseManifest, SkillHost } from "../src/index.js";

interface Row {
  scenario: string;
  p50: number;
  p99: number;
  baseline?: string;
  baseP50?: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(n: number, fn: () => unknown): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < Math.min(50, n / 10); i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { p50: pct(t, 50), p99: pct(t, 99) };
}

async function rawFreshIsolate(): Promise<unknown> {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    const mod = await isolate.compileModule("export default async (i) => ({ ok: true, n: i.n });");
    await mod.instantiate(context, () => {
      throw new Error("no imports");
    });
    await mod.evaluate();
    const fn = await mod.namespace.get("default", { reference: true });
    return await fn.apply(undefined, [{ n: 1 }], { arguments: { copy: true }, result: { promise: true, copy: true } });
  } finally {
    isolate.dispose();
  }
}

const root = mkdtempSync(join(tmpdir(), "skillbox-bench-"));
const skills = join(root, "skills");
mkdirSync(join(skills, "noop"), { recursive: true });
writeFileSync(join(skills, "noop", "skill.yaml"), "name: noop\nversion: 1.0.0\ndescription: does nothing\n");
writeFileSync(join(skills, "noop", "index.js"), "export default async (i) => ({ ok: true, n: i.n });");
mkdirSync(join(skills, "reader"), { recursive: true });
writeFileSync(join(skills, "reader", "skill.yaml"), 'name: reader\nversion: 1.0.0\ndescription: reads a file\npermissions: { files: [{ path: "${workspace}/**", access: [read] }] }\n');
writeFileSync(join(skills, "reader", "index.js"), "export default async (i, ctx) => ({ len: (await ctx.fs.readFile(ctx.env.workspace + '/f.txt')).length });");
writeFileSync(join(root, "f.txt"), "x".repeat(1024));

const host = await SkillHost.open({ skillsDir: skills, workspace: root, audit: join(root, "audit.jsonl"), onWarning: () => undefined });
const rows: Row[] = [];
const N = Number(process.env["BENCH_N"] ?? 400);

const raw = await measure(N, rawFreshIsolate);
const noop = await measure(N, () => host.call("noop", { n: 1 }));
rows.push({ scenario: "noop skill via host.call (fresh isolate, worker process, validation, authorize, audit, retry/timeout)", ...noop, baseline: "raw isolated-vm: new Isolate + context + module + call + dispose", baseP50: raw.p50 });
const read = await measure(N, () => host.call("reader", {}, { caller: { id: "b", trust: "user-verified" } }));
rows.push({ scenario: "skill reading one 1 KB file through ctx.fs", ...read, baseline: "raw isolated-vm (no file access)", baseP50: raw.p50 });
const denied = await measure(N, () => host.call("reader", {}, { caller: { id: "b", trust: "untrusted" } }));
rows.push({ scenario: "refused call (E_PERMISSION_DENIED before any isolate)", ...denied });
const manifest = parseManifest('name: r\nversion: 1.0.0\ndescription: d\npermissions: { files: [{ path: "${workspace}/notes/**", access: [read, list] }] }\n', "skill.yaml");
const policy = builtinPolicy();
const auth = await measure(N * 10, () => authorize(manifest, { trust: "user-verified", policy, vars: { workspace: "/ws", home: "/home/u", skill: "/s" } }));
rows.push({ scenario: "authorize() alone (uncached: compiles globs)", ...auth });
await host.close();

const require = createRequire(import.meta.url);
const ivmVersion = (JSON.parse(readFileSync(require.resolve("isolated-vm/package.json"), "utf8")) as { version: string }).version;
const ms = (v: number) => (v < 0.1 ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(3)} ms`);
const lines = [
  "# skillbox benchmark results",
  "",
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}; Node ${process.version}; isolated-vm ${ivmVersion}; ${N} calls per scenario, sequential.`,
  "",
  "| scenario | p50 | p99 | baseline | baseline p50 | ratio (p50) |",
  "|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.scenario} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.baseline ?? "—"} | ${r.baseP50 === undefined ? "—" : ms(r.baseP50)} | ${r.baseP50 === undefined ? "—" : (r.p50 / r.baseP50).toFixed(2) + "×"} |`),
  "",
];
writeFileSync(new URL("../../benchmarks/RESULTS.md", import.meta.url), lines.join("\n"));
console.log(lines.join("\n"));
