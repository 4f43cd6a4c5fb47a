import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { SkillHost as Host } from "../../dist/src/index.js";
import { EXAMPLE_SKILLS, ROOT, fixture, type Fixture, writeSkill } from "../helpers.js";

/**
 * Red team (usability): a skill with only `list` on the workspace sees its files as empty
 * placeholders. One mount per hidden file went over the mount limit in a working tree of a few
 * thousand files, and `git log` could not run at all ("cannot confine the process"). A folder
 * whose files are all hidden is now one mount (a replica of empty placeholders), so mounts scale
 * with folders, not files; the contents stay hidden.
 */
const FILES = 3000;

const PEEK = `export default async function (input, ctx) {
  const r = await ctx.exec("sh", ["-c", input.script]);
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}`;

function repoWithManyFiles(ws: string): void {
  mkdirSync(join(ws, "data"), { recursive: true }); // a folder with nothing grantable: hidden whole (one mount)
  writeFileSync(join(ws, "data", "inner.txt"), "SECRET-DATA\n");
  const git = (...args: string[]) => execFileSync("git", ["-C", ws, "-c", "user.email=rt@example.com", "-c", "user.name=rt", ...args], { stdio: "ignore" });
  git("init", "-q");
  writeFileSync(join(ws, "README.md"), "SECRET-README\n");
  git("add", "README.md");
  git("commit", "-qm", "first");
  // the working tree itself holds the files: its names are listed, each file's content hidden
  for (let i = 0; i < FILES; i++) writeFileSync(join(ws, `f${i}.txt`), `SECRET-${i}\n`);
}

describe("a confined process in a working tree of 3,000 files in one folder", () => {
  let fx: Fixture;
  let host: SkillHost;
  const trusted = { caller: { id: "rt", trust: "trusted" as const } };
  beforeAll(async () => {
    fx = fixture();
    repoWithManyFiles(fx.workspace);
    const files = `    files:\n      - { path: "\${workspace}/**", access: [list] }\n      - { path: "\${workspace}/.git/**", access: [read] }\n`;
    const process = `    process:\n      - { command: sh, args: ["-c", "/^[^]*$/"] }\n`;
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\nprocess: { sandbox: required }\ntrust:\n  trusted:\n${files}${process}`);
    writeSkill(fx.skills, "peek", `permissions:\n${files.replace(/^ {2}/gm, "")}${process.replace(/^ {2}/gm, "")}`, { "index.js": PEEK });
    host = await fx.open({ policy: join(fx.root, "policy.yaml") });
  });
  afterAll(async () => host.close());

  it("lists every name, reads every hidden file as empty, and git log works", async () => {
    const ws = fx.workspace;
    const script = [`cd ${ws}`, "ls | grep -c '^f[0-9]*[.]txt$'", "cat f0.txt f2999.txt README.md | wc -c", "ls -A data | wc -l", "git log --oneline --no-decorate -n 1"].join(" && ");
    const r = await host.call("peek", { script }, trusted);
    expect(r).toMatchObject({ ok: true, output: { exitCode: 0 } });
    if (!r.ok) return;
    const lines = (r.output as { stdout: string }).stdout.trim().split("\n");
    expect(lines[0]?.trim()).toBe(String(FILES));
    expect(lines[1]?.trim()).toBe("0"); // hidden contents read as empty
    expect(lines[2]?.trim()).toBe("0"); // a folder with nothing grantable shows no names
    expect(lines[3]).toMatch(/^[0-9a-f]+ first$/);
    expect((r.output as { stdout: string }).stdout).not.toContain("SECRET");
  });

  it("cannot change the placeholders or add a file next to them", async () => {
    expect(existsSync(join(fx.workspace, "new.txt"))).toBe(false);
    const ws = fx.workspace;
    const r = await host.call("peek", { script: `echo x > ${ws}/f1.txt; echo y > ${ws}/new.txt; cat ${ws}/f1.txt | wc -c` }, trusted);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const out = r.output as { exitCode: number; stdout: string; stderr: string };
    expect(out.stdout.trim()).toBe("0");
    expect(out.stderr).toMatch(/Read-only file system|Permission denied/);
    expect(existsSync(join(fx.workspace, "new.txt"))).toBe(false);
    expect(readFileSync(join(fx.workspace, "f1.txt"), "utf8")).toBe("SECRET-1\n");
  });
});

describe("git-log-summary (example skill and policy) in a working tree of 3,000 files", () => {
  let host: SkillHost;
  beforeAll(async () => {
    const fx = fixture();
    repoWithManyFiles(fx.workspace);
    copyFileSync(join(ROOT, "examples", "workspace", "skillbox.policy.yaml"), join(fx.workspace, "skillbox.policy.yaml"));
    host = await Host.open({ skillsDir: EXAMPLE_SKILLS, workspace: fx.workspace, audit: fx.auditFile, stateDir: join(fx.root, "state"), workers: 1, onWarning: () => undefined });
  });
  afterAll(async () => host.close());

  it("runs under bwrap instead of failing with 'cannot confine the process'", async () => {
    const r = await host.call("git-log-summary", { count: 1 }, { caller: { id: "rt", trust: "trusted" } });
    expect(r).toMatchObject({ ok: true, output: { commits: [{ subject: "first" }] } });
  });
});
