import { spawn } from "node:child_process";
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
    // Each attempt spins 3 s and then asks to be retried: SIGINT lands inside attempt 1.
    writeSkill(skills, "slow-flaky", "limits: { timeoutMs: 2000 }\nretry: { attempts: 3, initialDelayMs: 10 }\n", {
      "index.js": `export default async (i, ctx) => { ${burn(1900)} throw new ctx.RetryableError('try again'); };`,
    });
    const audit = join(dir, "audit.jsonl");
    const run = skillbox(["run", "slow-flaky", "--json", "--skills", skills, "--audit", audit], dir);
    await waitFor("attempt 1 to start", () => /attempt 1/.test(run.out.stderr));
    run.child.kill("SIGINT");
    const r = await run.done;
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
    writeSkill(skills, "late", `permissions:\n  files:\n    - { path: "\${tmp}/**", access: [write, create] }\nlimits: { timeoutMs: 150 }\n`, {
      "index.js": "export default async (i, ctx) => { await ctx.fs.writeFile(ctx.env.tmp + '/x', 'y'); for (;;) {} };",
    });
    const runs: Run[] = [];
    const queue = Array.from({ length: 50 }, (_, i) => i);
    // Four at a time: the race is in each process's shutdown, not between processes.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (queue.shift() !== undefined) runs.push(await skillbox(["run", "late", "--json", "--skills", skills, "--audit", join(dir, "audit.jsonl")], dir).done);
      }),
    );
    expect(runs).toHaveLength(50);
    const bad = runs.filter((r) => {
      const lines = r.stdout
        .trim()
        .split("\n")
        .filter((l) => l !== "");
      return r.code !== 1 || lines.length !== 1 || (JSON.parse(lines[0]!) as { error?: { code: string } }).error?.code !== "E_TIMEOUT";
    });
    expect(bad.map((r) => ({ code: r.code, stdout: r.stdout.slice(0, 200), stderr: r.stderr.slice(0, 300) }))).toEqual([]);
  }, 240_000);
});
