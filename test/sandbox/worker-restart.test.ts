import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Supervisor, type RunSpec } from "../../dist/src/sandbox/supervisor.js";
import { tempDir } from "../helpers.js";

const WORKER = new URL("../../dist/src/sandbox/worker/main.js", import.meta.url).pathname;

function spec(): RunSpec {
  return {
    code: { key: "echo#1", name: "echo", entry: "index.js", files: [["index.js", "export default async (i) => i;"]] },
    inputJson: '{"v":1}',
    envJson: "{}",
    memoryMb: 32,
    timeoutMs: 5000,
    outputBytes: 1024,
    onCapability: async () => "{}",
  };
}

describe("worker restarts are capped with back-off and surfaced as an error", () => {
  let sup: Supervisor | undefined;
  afterEach(async () => sup?.close());

  it("a worker that cannot start is retried a bounded number of times, then every call fails at once with why", async () => {
    const dir = tempDir();
    const broken = join(dir, "broken.js");
    writeFileSync(broken, 'process.stderr.write("Error: isolated-vm cannot load here\\n"); process.exit(3);\n');
    const warnings: string[] = [];
    sup = new Supervisor({ workers: 1, workerPath: broken, maxStartFailures: 3, restartFirstMs: 5, restartMaxMs: 20, onWarning: (m) => warnings.push(m) });
    const r = await sup.run(spec()).result;
    expect(r.outcome.kind).toBe("engine");
    const message = r.outcome.kind === "engine" ? r.outcome.message : "";
    expect(message).toContain("could not start");
    expect(message).toContain("exit code 3");
    expect(message).toContain("isolated-vm cannot load here");
    expect(sup.spawned).toBe(3);
    expect(warnings).toHaveLength(1);
    // Later calls fail at once, without a restart loop: at most one background try per call burst.
    const again = await Promise.all([sup.run(spec()).result, sup.run(spec()).result, sup.run(spec()).result]);
    for (const x of again) expect(x.outcome.kind === "engine" && x.outcome.message).toContain("could not start");
    expect(sup.spawned).toBe(3);
    expect(warnings).toHaveLength(1);
  });

  it("a start that succeeds after failures resets the count and runs the call", async () => {
    const dir = tempDir();
    const flaky = join(dir, "flaky.mjs");
    const count = join(dir, "count");
    // Fails its first two starts, then is the real worker.
    writeFileSync(
      flaky,
      `import { readFileSync, writeFileSync } from "node:fs";
       const n = Number((() => { try { return readFileSync(${JSON.stringify(count)}, "utf8"); } catch { return "0"; } })());
       writeFileSync(${JSON.stringify(count)}, String(n + 1));
       if (n < 2) process.exit(1);
       await import(${JSON.stringify(WORKER)});\n`,
    );
    sup = new Supervisor({ workers: 1, workerPath: flaky, maxStartFailures: 3, restartFirstMs: 5, restartMaxMs: 20 });
    const r = await sup.run(spec()).result;
    expect(r.outcome).toEqual({ kind: "ok", json: '{"v":1}' });
    expect(existsSync(count)).toBe(true);
    // Two failed starts, the good one, and the spare kept once the first attempt ended.
    expect(sup.spawned).toBeLessThanOrEqual(4);
  });
});
