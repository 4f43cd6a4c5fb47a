import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REQUIRED_NODE_MAJOR, runtimeProblem } from "../../dist/src/index.js";
import { BIN, tempDir } from "../helpers.js";

// An older Node on PATH (the machine's own), if there is one: the bin must fail fast and clearly there.
function olderNode(): string | undefined {
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    const candidate = join(dir, "node");
    if (!dir || dir.includes("node_modules") || !existsSync(candidate)) continue;
    try {
      const v = execFileSync(candidate, ["-p", "process.versions.node"], { encoding: "utf8", timeout: 5000 }).trim();
      if (Number(v.split(".")[0]) < REQUIRED_NODE_MAJOR) return candidate;
    } catch {
      /* not runnable */
    }
  }
  return undefined;
}

describe("the runtime check", () => {
  it("finds nothing wrong on the Node the tests run on", () => {
    expect(runtimeProblem()).toBeNull();
  });

  const old = olderNode();
  it.skipIf(old === undefined)("an older Node without the project's own Node 24 to fall back on: one clear message, exit 2", () => {
    // SKILLBOX_REEXEC=1 stands for an installed package (no bundled Node 24 to re-run with).
    const r = spawnSync(old!, [BIN, "run", "anything"], { cwd: tempDir(), encoding: "utf8", timeout: 10_000, env: { ...process.env, SKILLBOX_REEXEC: "1" } });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`needs Node\\.js ${REQUIRED_NODE_MAJOR} or newer; this is v\\d+`));
    expect(r.stderr).toMatch(/npm ci|nvm install/);
  });

  it.skipIf(old === undefined)("in a clone, an older Node re-runs the command with the project's Node 24", () => {
    const r = spawnSync(old!, [BIN, "--version"], { encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
