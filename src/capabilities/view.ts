import type { Dirent } from "node:fs";
import { lstat, opendir, realpath } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { FileAccess } from "../manifest/schema.js";
import type { Grant } from "../policy/authorize.js";
import { checkFileAccess } from "../policy/check.js";
import { controlPlaneObjection } from "../policy/control-plane.js";
import { staticBase, TMP_PLACEHOLDER } from "../policy/match.js";
import type { PathArgument } from "../policy/process.js";
import { SYSTEM_PATHS, type Bind, type ConfineSpec, type Mask } from "./confine.js";
import { CapabilityFailure } from "./errors.js";

/** Most entries walked to find what must be hidden inside the folders a process sees. */
export const MAX_VIEW_ENTRIES = 20_000;
/** Most paths hidden or re-protected inside them (each is one mount). */
export const MAX_VIEW_MOUNTS = 2_000;
const MAX_VIEW_DEPTH = 32;

const CHANGES: readonly FileAccess[] = ["write", "create", "delete"];

function inside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : dir + "/");
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function nearestExisting(path: string): Promise<string | undefined> {
  for (let p = path, i = 0; i < 256; p = dirname(p), i++) {
    const real = await realOrUndefined(p);
    if (real !== undefined) return real;
    if (p === "/") break;
  }
  return undefined;
}

async function entriesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of (await opendir(dir)) as AsyncIterable<Dirent>) {
      out.push(join(dir, e.name));
      if (out.length > MAX_VIEW_MOUNTS) throw tooLarge(`more than ${MAX_VIEW_MOUNTS} entries in ${dir}`);
    }
  } catch (err) {
    if (err instanceof CapabilityFailure) throw err;
  }
  return out;
}

async function realOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch {
    return undefined;
  }
}

export interface ViewRequest {
  grant: Grant;
  tmpDir: string;
  cwd: string;
  /** the resolved executable (shown read-only when it lies outside the system folders) */
  executable: string;
  paths: readonly PathArgument[];
  network: boolean;
}

/**
 * The file system a confined process sees: the system folders read-only, the call's ${tmp}
 * read-write, every folder the skill's grant starts from with the grant's access, the path
 * arguments it was allowed, and inside all of them nothing the grant refuses (deny rules,
 * paths outside the rule's glob) and nothing of the control plane (hidden, or read-only).
 */
export async function buildView(req: ViewRequest): Promise<ConfineSpec> {
  const { grant, tmpDir } = req;
  const binds = new Map<string, boolean>();
  const add = (path: string, write: boolean) => binds.set(path, (binds.get(path) ?? false) || write);
  add(tmpDir, true);

  for (const rule of grant.files) {
    const pattern = rule.pattern;
    if (inside(pattern, TMP_PLACEHOLDER)) continue;
    const base = await realOrUndefined(staticBase(pattern) || "/");
    if (base === undefined || base === "/") continue;
    add(base, CHANGES.some((a) => rule.access.has(a)));
  }
  for (const p of req.paths) {
    const write = p.access.some((a) => CHANGES.includes(a));
    if (await exists(p.real)) add(p.real, write);
    else {
      const parent = await realOrUndefined(dirname(p.real));
      if (parent !== undefined) add(parent, write);
    }
  }
  if (![...binds.keys()].some((b) => inside(req.cwd, b))) add(req.cwd, false);
  if (!SYSTEM_PATHS.some((s) => inside(req.executable, s)) && ![...binds.keys()].some((b) => inside(req.executable, b))) add(req.executable, false);
  for (const dir of grant.binPath) {
    const real = await realOrUndefined(dir);
    if (real !== undefined && !SYSTEM_PATHS.some((s) => inside(real, s))) add(real, false);
  }

  // A control-plane path that does not exist yet cannot be covered by a mount, and from a writable
  // folder it could be created. The folder that would hold it is shown read-only, and what it holds
  // now read-write again: only creating new entries right there is impossible.
  for (const p of [...grant.controlPlane.protect, ...grant.controlPlane.hide]) {
    if (await exists(p)) continue;
    const holder = await nearestExisting(dirname(p));
    if (holder === undefined) continue;
    const writable = [...binds.entries()].filter(([b, w]) => w && b !== tmpDir && inside(holder, b)).sort((a, b) => b[0].length - a[0].length)[0];
    if (!writable) continue;
    binds.set(holder, false);
    for (const entry of await entriesOf(holder)) if (!binds.has(entry)) binds.set(entry, true);
    if (binds.size > MAX_VIEW_MOUNTS) throw tooLarge(`more than ${MAX_VIEW_MOUNTS} folders to show`);
  }

  const masks: Mask[] = [];
  const readOnly: string[] = [];
  const budget = { entries: 0 };
  const pathArgs = new Set(req.paths.map((p) => p.real));
  const roots = [...binds.keys()].filter((b) => b !== tmpDir && ![...binds.keys()].some((o) => o !== b && o !== tmpDir && inside(b, o)));
  for (const root of roots) {
    const rootClass = classify(req, root, pathArgs, true);
    if (rootClass === "mask") {
      for (const b of [...binds.keys()]) if (inside(b, root)) binds.delete(b);
      continue;
    }
    if (rootClass === "readonly") readOnly.push(root);
    await walk(req, root, pathArgs, masks, readOnly, budget, 0, rootClass === "readonly");
  }
  return {
    binds: [...binds.entries()].map(([path, write]): Bind => ({ path, write })),
    masks,
    readOnly,
    network: req.network,
    cwd: req.cwd,
  };
}

type EntryClass = "mask" | "readonly" | "descend" | "keep";

/** Whether any rule granting read or write (or an allowed path argument) could apply at or below `dir`. */
function mayHoldAccessible(req: ViewRequest, dir: string, pathArgs: ReadonlySet<string>): boolean {
  for (const rule of req.grant.files) {
    if (!rule.access.has("read") && !rule.access.has("write")) continue;
    if (inside(rule.pattern, TMP_PLACEHOLDER)) continue;
    const base = staticBase(rule.pattern) || "/";
    if (inside(dir, base) || inside(base, dir)) return true;
  }
  for (const p of pathArgs) if (inside(dir, p) || inside(p, dir)) return true;
  return false;
}

function classify(req: ViewRequest, path: string, pathArgs: ReadonlySet<string>, isDir: boolean): EntryClass {
  const { grant, tmpDir } = req;
  if (controlPlaneObjection(grant.controlPlane, path, "read")) return "mask";
  const protectedPath = controlPlaneObjection(grant.controlPlane, path, "write") !== undefined;
  // .git as a whole: hooks and config there run code outside any sandbox on the user's next git command,
  // and a folder holding a mount (hooks) can still be renamed away.
  const gitFolder = isDir && path.endsWith("/.git");
  if (pathArgs.has(path)) return protectedPath ? "readonly" : isDir ? "descend" : "keep";
  const readable = checkFileAccess(grant, path, isDir ? "list" : "read", tmpDir).allowed || checkFileAccess(grant, path, "write", tmpDir).allowed;
  if (isDir) {
    // a folder is hidden when a deny rule takes it, or when nothing in it can be granted for reading
    // or writing (one mount instead of one per file; its names are hidden with its contents)
    if (grant.denyFiles.some((d) => d.test(path))) return "mask";
    if (!mayHoldAccessible(req, path, pathArgs)) return "mask";
    return protectedPath || gitFolder ? "readonly" : "descend";
  }
  if (!readable) return "mask";
  return protectedPath ? "readonly" : "keep";
}

/**
 * `roAbove`: `dir` is shown read-only already (its bind is recursive), so what lies in it needs no
 * read-only mount of its own, only masks: a .git folder with thousands of objects is one mount.
 */
async function walk(req: ViewRequest, dir: string, pathArgs: ReadonlySet<string>, masks: Mask[], readOnly: string[], budget: { entries: number }, depth: number, roAbove = false): Promise<void> {
  if (depth > MAX_VIEW_DEPTH) throw tooLarge(`folders nested deeper than ${MAX_VIEW_DEPTH} levels under ${dir}`);
  let handle;
  try {
    handle = await opendir(dir);
  } catch {
    return; // a file bind, or a folder we cannot read (the process cannot either)
  }
  for await (const entry of handle as AsyncIterable<Dirent>) {
    if (++budget.entries > MAX_VIEW_ENTRIES) throw tooLarge(`more than ${MAX_VIEW_ENTRIES} entries in the granted folders`);
    const path = join(dir, entry.name);
    const isDir = entry.isDirectory();
    const c = classify(req, path, pathArgs, isDir);
    if (c === "mask") masks.push({ path, kind: isDir ? "dir" : "file" });
    else if (c === "readonly") {
      if (!roAbove) readOnly.push(path);
      if (isDir) await walk(req, path, pathArgs, masks, readOnly, budget, depth + 1, true);
    } else if (c === "descend") await walk(req, path, pathArgs, masks, readOnly, budget, depth + 1, roAbove);
    if (masks.length + readOnly.length > MAX_VIEW_MOUNTS) throw tooLarge(`more than ${MAX_VIEW_MOUNTS} paths to hide or protect inside the granted folders`);
  }
}

function tooLarge(what: string): CapabilityFailure {
  return new CapabilityFailure(`exec: cannot confine the process: ${what}; grant narrower folders`);
}
