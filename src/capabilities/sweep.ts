import type { Dirent } from "node:fs";
import { lstat, opendir, realpath, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { FileAccess } from "../manifest/schema.js";
import type { ControlPlane } from "../policy/control-plane.js";
import { controlPlaneObjection } from "../policy/control-plane.js";
import type { Grant } from "../policy/model.js";
import { staticBase, TMP_PLACEHOLDER } from "../policy/match.js";
import type { PathArgument } from "../policy/process.js";
import { CapabilityFailure } from "./errors.js";
import { MAX_VIEW_ENTRIES } from "./view.js";

/**
 * A process with a writable folder can create names there that no mount can forbid in advance: a
 * new `.git` (with hooks, or a config setting core.fsmonitor, or a `gitdir:` file) runs code outside
 * any sandbox on the user's next git command. So the writable folders are looked at before the run
 * and again after it (when the process and, confined, all its descendants are gone): every
 * control-plane entry that was not there before, or is not the same file any more, is removed.
 */

const CHANGES: readonly FileAccess[] = ["write", "create", "delete"];
/** Entries looked at after the run: what was there plus what a process may fairly have added. */
export const MAX_SWEEP_ENTRIES = 2 * MAX_VIEW_ENTRIES;

export interface SweepSnapshot {
  roots: string[];
  /** control-plane entries that existed before the run, by path, with their inode */
  existing: Map<string, number>;
}

export interface SweepResult {
  removed: string[];
  /** set when the folders hold too many entries after the run to rule out a created control-plane entry */
  overflow?: string;
}

async function realOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : dir + "/");
}

/**
 * The folders a process may create names in, besides the call's ${tmp} (removed with the call): the
 * static base of every file rule granting a change, and the writable path arguments. A base that
 * does not exist yet is kept as written below its nearest existing (real) folder: an unconfined
 * process may create it.
 */
export async function writableRoots(grant: Grant, paths: readonly PathArgument[]): Promise<string[]> {
  const out = new Set<string>();
  const addBase = async (path: string) => {
    const real = await realOrUndefined(path);
    if (real !== undefined) return void (real !== "/" && out.add(real));
    let p = path;
    const rest: string[] = [];
    for (let i = 0; i < 256 && p !== "/"; i++, p = dirname(p)) {
      const r = await realOrUndefined(p);
      if (r !== undefined) {
        const joined = join(r, ...rest.reverse());
        if (joined !== "/") out.add(joined);
        return;
      }
      rest.push(basename(p));
    }
  };
  for (const rule of grant.files) {
    if (inside(rule.pattern, TMP_PLACEHOLDER) || !CHANGES.some((a) => rule.access.has(a))) continue;
    await addBase(staticBase(rule.pattern) || "/");
  }
  for (const p of paths) {
    if (!p.access.some((a) => CHANGES.includes(a))) continue;
    const st = await lstat(p.real).catch(() => undefined);
    await addBase(st?.isDirectory() ? p.real : dirname(p.real));
  }
  const all = [...out];
  return all.filter((r) => !all.some((o) => o !== r && inside(r, o)));
}

function isControlPlane(cp: ControlPlane, path: string): boolean {
  return controlPlaneObjection(cp, path, "create") !== undefined;
}

/**
 * Walks the roots without following symlinks and without recursion (an explicit stack): calls
 * `found` for each control-plane entry (not descended into). Returns false when over `maxEntries`.
 */
async function walkRoots(cp: ControlPlane, roots: readonly string[], maxEntries: number, found: (path: string) => Promise<void>): Promise<boolean> {
  let entries = 0;
  const stack: string[] = [];
  for (const root of roots) {
    const st = await lstat(root).catch(() => undefined);
    if (st?.isDirectory()) stack.push(root);
  }
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      continue; // gone, or not readable (by the process either)
    }
    for await (const e of handle as AsyncIterable<Dirent>) {
      if (++entries > maxEntries) {
        await handle.close().catch(() => undefined);
        return false;
      }
      const path = join(dir, e.name);
      if (isControlPlane(cp, path)) await found(path);
      else if (e.isDirectory()) stack.push(path);
    }
  }
  return true;
}

/** Before the run: the control-plane entries already in the writable folders. */
export async function snapshotBeforeRun(cp: ControlPlane, roots: string[]): Promise<SweepSnapshot> {
  const existing = new Map<string, number>();
  const ok = await walkRoots(cp, roots, MAX_VIEW_ENTRIES, async (path) => {
    const st = await lstat(path).catch(() => undefined);
    if (st) existing.set(path, st.ino);
  });
  if (!ok) throw new CapabilityFailure(`exec: cannot run the process: more than ${MAX_VIEW_ENTRIES} entries in the folders it may write; grant narrower folders`);
  return { roots, existing };
}

/** After the run: removes (never following symlinks) every control-plane entry the process created or replaced. */
export async function sweepAfterRun(cp: ControlPlane, snap: SweepSnapshot): Promise<SweepResult> {
  const created: string[] = [];
  const ok = await walkRoots(cp, snap.roots, MAX_SWEEP_ENTRIES, async (path) => {
    const st = await lstat(path).catch(() => undefined);
    if (st && snap.existing.get(path) !== st.ino) created.push(path);
  });
  const removed: string[] = [];
  for (const path of created) {
    // rm takes a symlink itself away, and walks what it removes with lstat: nothing outside is touched.
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  return ok ? { removed } : { removed, overflow: `more than ${MAX_SWEEP_ENTRIES} entries in ${snap.roots.join(", ")} after the process ran` };
}
