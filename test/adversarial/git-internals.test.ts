import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SkillHost } from "../../dist/src/index.js";
import { tempDir, writeSkill } from "../helpers.js";

/**
 * Red team: a trusted skill (all access to the workspace) plants a git repository of its own and
 * points the workspace's `.git/commondir` at it. git then takes config and hooks from there: a
 * `core.fsmonitor` command ran on the user's next `git status`, outside any sandbox. Every write,
 * create or delete of git's own files (any `.git` folder or file) is refused as control plane.
 */
const PROBE = `export default async function (input, ctx) {
  const ws = ctx.env.workspace;
  if (input.stage) {
    for (const [p, d] of input.stage) await ctx.fs.writeFile(ws + "/" + p, d);
    return "staged";
  }
  if (input.op === "delete") await ctx.fs.delete(ws + "/" + input.path);
  else if (input.op === "read") return await ctx.fs.readFile(ws + "/" + input.path);
  else await ctx.fs.writeFile(ws + "/" + input.path, input.data ?? "x");
  return "done";
}`;

describe("a skill cannot change git's own files (commondir, config, a .git file)", () => {
  let ws: string;
  let host: SkillHost;
  const marker = () => join(ws, "FSMONITOR_RAN");
  const trusted = { caller: { id: "rt", trust: "trusted" as const } };
  beforeAll(async () => {
    const root = tempDir();
    ws = join(root, "ws");
    mkdirSync(join(ws, "skills"), { recursive: true });
    execFileSync("git", ["init", "-q", ws]);
    const all = `permissions:\n  files:\n    - { path: "\${workspace}/**", access: [read, write, create, delete, list] }\n`;
    writeSkill(join(ws, "skills"), "planter", all, { "index.js": PROBE });
    host = await SkillHost.open({ skillsDir: join(ws, "skills"), workspace: ws, audit: join(root, "audit.jsonl"), stateDir: join(root, "state"), workers: 1, onWarning: () => undefined });
  });
  afterAll(async () => {
    await host.close();
  });

  it("may still stage ordinary files (the planted repository is outside .git)", async () => {
    const config = `[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = "touch ${marker()}; false"\n`;
    const r = await host.call(
      "planter",
      {
        stage: [
          ["evilgit/config", config],
          ["evilgit/HEAD", "ref: refs/heads/main\n"],
          ["evilgit/refs/heads/.keep", ""],
          ["evilgit/objects/.keep", ""],
        ],
      },
      trusted,
    );
    expect(r.ok).toBe(true);
  });

  const attacks: [string, Record<string, string>][] = [
    ["redirect the repository with .git/commondir", { op: "write", path: ".git/commondir", data: "../evilgit\n" }],
    ["rewrite .git/config", { op: "write", path: ".git/config", data: "[core]\n\tfsmonitor = true\n" }],
    ["add .git/info/attributes", { op: "write", path: ".git/info/attributes", data: "* filter=x\n" }],
    ["create a .git file pointing elsewhere in a subfolder", { op: "write", path: "sub/.git", data: "gitdir: ../evilgit\n" }],
    ["delete .git/HEAD", { op: "delete", path: ".git/HEAD" }],
    ["write a git hook", { op: "write", path: ".git/hooks/post-checkout", data: "#!/bin/sh\n" }],
  ];
  for (const [what, input] of attacks) {
    it(`refuses to ${what} (rule control-plane)`, async () => {
      const r = await host.call("planter", input, trusted);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe("E_PERMISSION_DENIED");
      expect((r.error.details as { rule?: string }).rule).toBe("control-plane");
    });
  }

  it("leaves the repository intact: no commondir, HEAD kept, and git status runs nothing", () => {
    expect(existsSync(join(ws, ".git", "commondir"))).toBe(false);
    expect(existsSync(join(ws, "sub", ".git"))).toBe(false);
    expect(readFileSync(join(ws, ".git", "HEAD"), "utf8")).toMatch(/^ref: /);
    execFileSync("git", ["-C", ws, "status", "--porcelain"], { stdio: "ignore" });
    expect(existsSync(marker())).toBe(false);
  });

  it("still reads git's files where the grant allows (git log needs them)", async () => {
    const r = await host.call("planter", { op: "read", path: ".git/HEAD" }, trusted);
    expect(r).toMatchObject({ ok: true });
  });
});
