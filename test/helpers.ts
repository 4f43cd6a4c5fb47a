import { mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// Tests drive the built package: what they check is what ships.
import { SkillHost, type SkillHostOptions } from "../dist/src/index.js";

export const ROOT = realpathSync(join(dirname(fileURLToPath(import.meta.url)), ".."));
export const EXAMPLE_SKILLS = join(ROOT, "skills");
export const BIN = join(ROOT, "bin", "skillbox.js");

export function tempDir(prefix = "skillbox-test-"): string {
  return realpathSync(mkdtempSync(join(tmpdir(), prefix)));
}

/** Writes a skill folder: manifest YAML (name filled in) and module files. */
export function writeSkill(skillsDir: string, name: string, manifest: string, files: Record<string, string>): string {
  const dir = join(skillsDir, name);
  mkdirSync(dir, { recursive: true });
  const head = `name: ${name}\nversion: 1.0.0\ndescription: test skill ${name}\n`;
  writeFileSync(join(dir, "skill.yaml"), head + manifest);
  for (const [rel, src] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), src);
  }
  return dir;
}

export interface Fixture {
  root: string;
  workspace: string;
  skills: string;
  auditFile: string;
  open(extra?: Partial<SkillHostOptions>): Promise<SkillHost>;
  /** Flushes the last opened host's log, then parses every line. */
  events(): Promise<Array<Record<string, unknown>>>;
}

/** A temporary workspace with a skills folder and an audit file inside it. */
export function fixture(): Fixture {
  const root = tempDir();
  const workspace = join(root, "ws");
  const skills = join(root, "skills");
  mkdirSync(workspace);
  mkdirSync(skills);
  const auditFile = join(root, "audit.jsonl");
  let last: SkillHost | undefined;
  return {
    root,
    workspace,
    skills,
    auditFile,
    open: async (extra = {}) => {
      last = await SkillHost.open({ skillsDir: skills, workspace, audit: auditFile, workers: 1, onWarning: () => undefined, ...extra });
      return last;
    },
    events: async () => {
      await last?.audit.flush();
      return readEvents(auditFile);
    },
  };
}

export function readEvents(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The CLI in this process, as bin/skillbox.js runs it (main(argv, io)), from `cwd`; the result is
 * shaped like spawnSync's. Spawn the real bin only where the process itself matters.
 */
export async function cli(args: string[], cwd = process.cwd()): Promise<{ status: number; stdout: string; stderr: string }> {
  const { main } = await import("../dist/src/cli/main.js");
  const out: string[] = [];
  const err: string[] = [];
  const before = process.cwd();
  process.chdir(cwd);
  try {
    const status = await main(args, { out: (s) => out.push(s + "\n"), err: (s) => err.push(s + "\n") });
    return { status, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.chdir(before);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `ready()` holds (checked every `everyMs`), for readiness instead of a fixed sleep.
 * Rejects after `withinMs`, naming what it waited for; the bound is generous because CI is loaded.
 */
export async function waitFor(what: string, ready: () => boolean | Promise<boolean>, { withinMs = 20_000, everyMs = 10 } = {}): Promise<void> {
  const end = performance.now() + withinMs;
  while (!(await ready())) {
    if (performance.now() > end) throw new Error(`timed out after ${withinMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** CPU ticks (1/100 s) a process has used, Linux only. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}
