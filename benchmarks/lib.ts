/** Shared helpers for the benchmark scenarios: timing, fixtures, raw isolated-vm baselines. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ivm from "isolated-vm";

export interface Stats {
  p50: number;
  p99: number;
  n: number;
}

export interface Row {
  scenario: string;
  /** milliseconds, or calls per second when `unit` is "calls/s" */
  value: Stats;
  baseline?: { label: string; value: Stats };
  unit?: "ms" | "calls/s" | "MB";
  target?: string;
  /** whether the target holds; undefined when there is none */
  met?: boolean;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
  return { p50: at(50), p99: at(99), n: s.length };
}

/** Times `fn` n times, one after the other, after a warm-up; `gapMs` waits between calls (untimed). */
export async function time(n: number, fn: () => unknown, gapMs = 0): Promise<Stats> {
  for (let i = 0; i < Math.max(20, n / 20); i++) {
    await fn();
    if (gapMs) await sleep(gapMs);
  }
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
    if (gapMs) await sleep(gapMs);
  }
  return stats(t);
}

/** A folder of benchmark skills and a workspace with a 1 KB file. */
export function fixtures(): { root: string; skills: string } {
  const root = mkdtempSync(join(tmpdir(), "skillbox-bench-"));
  const skills = join(root, "skills");
  const add = (name: string, manifest: string, src: string) => {
    mkdirSync(join(skills, name), { recursive: true });
    writeFileSync(join(skills, name, "skill.yaml"), `name: ${name}\nversion: 1.0.0\ndescription: benchmark ${name}\n${manifest}`);
    writeFileSync(join(skills, name, "index.js"), src);
  };
  add("noop", "", NOOP_SRC);
  add("reader", 'permissions: { files: [{ path: "${workspace}/**", access: [read] }] }\n', "export default async (i, ctx) => ({ len: (await ctx.fs.readFile(ctx.env.workspace + '/f.txt')).length });");
  add("echo", "input: { type: object, properties: { data: { type: string, maxLength: 20000 } } }\n", "export default async (i) => ({ data: i.data });");
  writeFileSync(join(root, "f.txt"), "x".repeat(1024));
  return { root, skills };
}

export const NOOP_SRC = "export default async (i) => ({ ok: true, n: i.n });";

/** Raw isolated-vm: a fresh isolate + context + module + call + dispose, in this process. */
export async function rawFresh(src = NOOP_SRC, arg: unknown = { n: 1 }): Promise<unknown> {
  const p = await rawPrepare(src);
  try {
    return await rawCall(p, arg);
  } finally {
    p.isolate.dispose();
  }
}

export interface RawPrepared {
  isolate: ivm.Isolate;
  fn: ivm.Reference;
}

/** Raw isolated-vm: what a pool prepares ahead (isolate, context, module evaluated). */
export async function rawPrepare(src = NOOP_SRC): Promise<RawPrepared> {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = await isolate.createContext();
  const mod = await isolate.compileModule(src);
  await mod.instantiate(context, () => {
    throw new Error("no imports");
  });
  await mod.evaluate();
  return { isolate, fn: await mod.namespace.get("default", { reference: true }) };
}

export function rawCall(p: RawPrepared, arg: unknown): Promise<unknown> {
  return p.fn.apply(undefined, [arg], { arguments: { copy: true }, result: { promise: true, copy: true } });
}

export function fmt(v: number, unit: Row["unit"] = "ms"): string {
  if (unit === "calls/s") return `${Math.round(v)} calls/s`;
  if (unit === "MB") return `${v.toFixed(1)} MB`;
  return v < 0.1 ? `${(v * 1000).toFixed(1)} µs` : `${v.toFixed(3)} ms`;
}
