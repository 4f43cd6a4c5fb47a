import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, readEvents, tempDir, waitFor, writeSkill } from "../helpers.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `skillbox ...`; `started` gives the child, `done` its exit code and output. */
function skillbox(args: string[], cwd: string) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out.stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on("close", (code) => resolve({ code, ...out })));
  return { child, out, done };
}

const burn = (ms: number) => `{ const t0 = Date.now(); while (Date.now() - t0 < ${ms}) {} }`;

describe("skillbox run and signals", () => {
  it("SIGINT during a retrying skill: exit 130, one JSON result (E_CANCELLED), no attempt 2", async () => {
    const dir = tempDir();
    const skills = join(dir, "skills");
    // Each attempt spins 20 s and then asks to be retried: SIGINT lands inside attempt 1, however loaded the machine.
    writeSkill(skills, "slow-flaky", "limits: { timeoutMs: 25000 }\nretry: { attempts: 3, initialDelayMs: 10 }\n", {
      "index.js": `export default async (i, ctx) => { ${burn(20_000)} throw new ctx.RetryableError('try again'); };`,
    });
    const audit = join(dir, "audit.jsonl");
    const run = skillbox(["run", "slow-flaky", "--json", "--trust", "trusted", "--skills", skills, "--audit", audit], dir);
    const started = () => {
      try {
        return existsSync(audit) && readEvents(audit).some((e) => e["event"] === "attempt.start");
      } catch {
        return false; // a line half written
      }
    };
    await waitFor("attempt 1 to start", started);
    const t0 = performance.now();
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(130);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as { ok: boolean; error: { code: string }; attempts: number };
    expect(result).toMatchObject({ ok: false, error: { code: "E_CANCELLED" }, attempts: 1 });
    const events = readEvents(audit);
    expect(events.filter((e) => e["event"] === "attempt.start").map((e) => e["attempt"])).toEqual([1]);
    expect(events.find((e) => e["event"] === "call.end")).toMatchObject({ code: "E_CANCELLED" });
  });

  it("50 runs of a skill that times out after a capability call: exit 1 and exactly one JSON result every time", async () => {
    const dir = tempDir();
    const skills = join(dir, "skills");
    writeSkill(skills, "late", `permissions:\n  files:\n    - { path: "\${tmp}/**", access: [write, create] }\nlimits: { timeoutMs: 400 }\n`, {
      // Waits forever after its capability call: the attempt times out with a capability reply just served.
      "index.js": "export default async (i, ctx) => { await ctx.fs.writeFile(ctx.env.tmp + '/x', 'y'); await new Promise(() => {}); };",
    });
    const runs: Run[] = [];
    const queue = Array.from({ length: 50 }, (_, i) => i);
    // Two at a time: the race is in each process's shutdown, not between processes.
    await Promise.all(
      Array.from({ length: 2 }, async () => {
        while (queue.shift() !== undefined) runs.push(await skillbox(["run", "late", "--json", "--skills", skills, "--audit", join(dir, "audit.jsonl")], dir).done);
      }),
    );
    expect(runs).toHaveLength(50);
    const bad = runs.filter((r) => {
      const lines = r.stdout
        .trim()
        .split("\n")
        .filter((l) => l !== "");
      // On a loaded machine a cold worker can spend the 400 ms before the capability call is served
      // ("no time left in this attempt": E_SKILL_ERROR); either way a run-time failure, exit 1.
      return r.code !== 1 || lines.length !== 1 || !["E_TIMEOUT", "E_SKILL_ERROR"].includes((JSON.parse(lines[0]!) as { error?: { code: string } }).error?.code ?? "");
    });
    expect(bad.map((r) => ({ code: r.code, stdout: r.stdout.slice(0, 200), stderr: r.stderr.slice(0, 300) }))).toEqual([]);
  }, 400_000);
});
