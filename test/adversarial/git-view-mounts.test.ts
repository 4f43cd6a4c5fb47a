import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillHost } from "../../dist/src/index.js";
import { EXAMPLE_SKILLS, ROOT, tempDir } from "../helpers.js";

/**
 * Red team, a regression of the fix in git-internals.test.ts: with all of `.git` protected, the
 * confined view gave every file inside `.git` a read-only mount of its own; a repository with a
 * few thousand loose objects went over the mount limit and `git log` could not run at all
 * ("cannot confine the process"). What lies inside a folder shown read-only needs no mount.
 */
describe("a confined git log in a repository with thousands of files in .git", () => {
  let ws: string;
  let host: SkillHost;
  beforeAll(async () => {
    const root = tempDir();
    ws = join(root, "ws");
    mkdirSync(ws);
    const git = (...args: string[]) => execFileSync("git", ["-C", ws, "-c", "user.email=rt@example.com", "-c", "user.name=rt", ...args], { stdio: "ignore" });
    git("init", "-q");
    writeFileSync(join(ws, "a.txt"), "a\n");
    git("add", "a.txt");
    git("commit", "-qm", "first");
    // loose objects are what a busy repository holds; git ignores files that are not objects
    for (let d = 0; d < 25; d++) {
      const dir = join(ws, ".git", "objects", `f${d.toString(16)}`);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 100; i++) writeFileSync(join(dir, `${"0".repeat(30)}${String(i).padStart(8, "0")}`), "");
    }
    copyFileSync(join(ROOT, "examples", "workspace", "skillbox.policy.yaml"), join(ws, "skillbox.policy.yaml"));
    host = await SkillHost.open({ skillsDir: EXAMPLE_SKILLS, workspace: ws, audit: join(root, "audit.jsonl"), stateDir: join(root, "state"), workers: 1, onWarning: () => undefined });
  });
  afterAll(async () => {
    await host.close();
  });

  it("runs (2,500 files under .git are one read-only mount, not 2,500)", async () => {
    const r = await host.call("git-log-summary", { count: 1 }, { caller: { id: "rt", trust: "trusted" } });
    expect(r).toMatchObject({ ok: true, output: { commits: [{ subject: "first" }] } });
  });
});
