import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { list, readFile, remove, writeFile, type FsScope } from "../../dist/src/capabilities/fs.js";
import type { Decision } from "../../dist/src/policy/model.js";
import type { Grant } from "../../dist/src/policy/authorize.js";
import { compileFileRule } from "../../dist/src/policy/match.js";
import { tempDir } from "../helpers.js";

/**
 * Red team: time of check to time of use. A skill's own process (ctx.exec, not awaited) swaps a
 * folder it may write for a symlink to the control plane while ctx.fs works: the path is checked
 * while `notes/d` is a folder and used when it points at the protected or hidden folder. The swap
 * is made deterministic here by doing it from the scope's `record` hook, which runs right after
 * the check and before the file is opened. Every access must then land on the checked path or
 * be refused; the protected file stays as it was and nothing hidden comes back.
 */
describe("ctx.fs: a folder swapped for a symlink between check and use is never followed", () => {
  let ws: string;
  let swapTo: string | undefined;
  let scope: FsScope;
  const d = () => join(ws, "notes", "d");
  const cp = () => join(ws, "cp");
  const hidden = () => join(ws, "state");

  beforeEach(() => {
    ws = join(tempDir(), "ws");
    mkdirSync(join(ws, "notes", "d"), { recursive: true });
    mkdirSync(cp());
    mkdirSync(hidden());
    writeFileSync(join(d(), "victim.txt"), "decoy");
    writeFileSync(join(d(), "secret.txt"), "decoy");
    writeFileSync(join(cp(), "victim.txt"), "original");
    writeFileSync(join(hidden(), "secret.txt"), "the state");
    swapTo = undefined;
    const all = ["read", "write", "create", "delete", "list"] as const;
    const rule = compileFileRule("${workspace}/**", `${ws}/**`, all);
    const grant = {
      skill: "swapper",
      trust: "trusted",
      files: [rule],
      ceilingFiles: [rule],
      denyFiles: [],
      controlPlane: { protect: [cp()], hide: [hidden()] },
    } as unknown as Grant;
    scope = {
      grant,
      workspace: ws,
      tmpDir: join(ws, "tmp"),
      deadline: performance.now() + 60_000,
      record: (_op: string, _target: string, decision: Decision) => {
        // the attacker's process wins the race: right after the check, before the use
        if (decision.allowed && swapTo !== undefined) {
          renameSync(d(), `${d()}-away`);
          symlinkSync(swapTo, d());
          swapTo = undefined;
        }
      },
    };
  });

  it("works as before when nothing is swapped", async () => {
    await writeFile(scope, join(d(), "new.txt"), "fine");
    expect(await readFile(scope, join(d(), "new.txt"))).toBe("fine");
    expect(await list(scope, d())).toEqual(["new.txt", "secret.txt", "victim.txt"]);
    await remove(scope, join(d(), "new.txt"));
    expect(existsSync(join(d(), "new.txt"))).toBe(false);
  });

  it("does not overwrite a protected file", async () => {
    swapTo = cp();
    await expect(writeFile(scope, join(d(), "victim.txt"), "pwned")).rejects.toMatchObject({ name: "PermissionDenied" });
    expect(readFileSync(join(cp(), "victim.txt"), "utf8")).toBe("original");
  });

  it("does not create a file in a protected folder", async () => {
    swapTo = cp();
    await expect(writeFile(scope, join(d(), "planted.txt"), "pwned")).rejects.toMatchObject({ name: "PermissionDenied" });
    expect(existsSync(join(cp(), "planted.txt"))).toBe(false);
  });

  it("does not delete a protected file", async () => {
    swapTo = cp();
    await expect(remove(scope, join(d(), "victim.txt"))).rejects.toMatchObject({ name: "PermissionDenied" });
    expect(existsSync(join(cp(), "victim.txt"))).toBe(true);
  });

  it("does not read a hidden file", async () => {
    swapTo = hidden();
    await expect(readFile(scope, join(d(), "secret.txt"))).rejects.toMatchObject({ name: "PermissionDenied" });
  });

  it("does not list a hidden folder", async () => {
    swapTo = hidden();
    const listed = await list(scope, d()).catch((e: Error) => e);
    expect(listed).toBeInstanceOf(Error);
  });

  it("does not follow a swap higher up the path either", async () => {
    // notes itself becomes a link to a tree whose d/ is the protected folder's parent
    mkdirSync(join(ws, "fake", "d"), { recursive: true });
    rmSync(join(ws, "fake", "d"), { recursive: true });
    symlinkSync(cp(), join(ws, "fake", "d"));
    scope.record = (_op, _t, decision) => {
      if (decision.allowed && !existsSync(join(ws, "notes-away"))) {
        renameSync(join(ws, "notes"), join(ws, "notes-away"));
        symlinkSync(join(ws, "fake"), join(ws, "notes"));
      }
    };
    await expect(writeFile(scope, join(d(), "victim.txt"), "pwned")).rejects.toMatchObject({ name: "PermissionDenied" });
    expect(readFileSync(join(cp(), "victim.txt"), "utf8")).toBe("original");
  });
});
