import type { Dirent } from "node:fs";
import { chmod, lstat, mkdir, mkdtemp, opendir, readdir, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
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
    add(
      base,
      CHANGES.some((a) => rule.access.has(a)),
    );
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

  const pathArgs = new Set(req.paths.map((p) => p.real));
  const roots = [...binds.keys()].filter((b) => b !== tmpDir && ![...binds.keys()].some((o) => o !== b && o !== tmpDir && inside(b, o)));
  const st: WalkState = { req, pathArgs, binds, masks: [], readOnly: [], budget: { entries: 0 }, scratch: { count: 0 } };
  try {
    for (const root of roots) {
      const rootClass = classify(req, root, pathArgs, true);
      if (rootClass === "mask") {
        for (const b of [...binds.keys()]) if (inside(b, root)) binds.delete(b);
        continue;
      }
      if (rootClass === "readonly") st.readOnly.push(root);
      await walk(st, root, 0, rootClass === "readonly");
    }
  } catch (err) {
    if (st.scratch.dir) await removeScratch(st.scratch.dir);
    throw err;
  }
  return {
    binds: [...binds.entries()].map(([path, write]): Bind => ({ path, write })),
    masks: st.masks,
    readOnly: st.readOnly,
    network: req.network,
    cwd: req.cwd,
    ...(st.scratch.dir ? { scratch: st.scratch.dir } : {}),
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

interface WalkState {
  req: ViewRequest;
  pathArgs: ReadonlySet<string>;
  binds: ReadonlyMap<string, boolean>;
  /** hide, replace and restore mounts, in the order they apply */
  masks: Mask[];
  readOnly: string[];
  budget: { entries: number };
  /** where replicas are prepared (made on first use) */
  scratch: { dir?: string; count: number };
}

/** Whether the view lets the process change `dir`: the nearest bind holding it is read-write. */
function writableInView(binds: ReadonlyMap<string, boolean>, dir: string): boolean {
  let best = "";
  let write = false;
  for (const [b, w] of binds) {
    if (inside(dir, b) && b.length > best.length) {
      best = b;
      write = w;
    }
  }
  return write;
}

async function replicaOf(st: WalkState, entries: readonly { name: string; isDir: boolean }[]): Promise<string> {
  st.scratch.dir ??= await mkdtemp(join(tmpdir(), "skillbox-view-"));
  const dir = join(st.scratch.dir, String(st.scratch.count++));
  await mkdir(dir);
  for (const e of entries) {
    if (e.isDir) await mkdir(join(dir, e.name));
    else await writeFile(join(dir, e.name), "", { mode: 0o444 });
  }
  await chmod(dir, 0o555);
  return dir;
}

/**
 * `roAbove`: `dir` is shown read-only already (its bind is recursive), so what lies in it needs no
 * read-only mount of its own, only masks: a .git folder with thousands of objects is one mount.
 * A read-only folder whose files are all hidden is replaced by one replica of empty placeholders
 * (mounts scale with folders, not files); inside it (`inReplica`) every mount goes, in order, to
 * `masks`, after the replica that would otherwise cover it.
 */
async function walk(st: WalkState, dir: string, depth: number, roAbove = false, inReplica = false): Promise<void> {
  if (depth > MAX_VIEW_DEPTH) throw tooLarge(`folders nested deeper than ${MAX_VIEW_DEPTH} levels under ${dir}`);
  let handle;
  try {
    handle = await opendir(dir);
  } catch {
    return; // a file bind, or a folder we cannot read (the process cannot either)
  }
  const entries: { name: string; path: string; isDir: boolean; c: EntryClass }[] = [];
  for await (const entry of handle as AsyncIterable<Dirent>) {
    if (++st.budget.entries > MAX_VIEW_ENTRIES) throw tooLarge(`more than ${MAX_VIEW_ENTRIES} entries in the granted folders`);
    const path = join(dir, entry.name);
    const isDir = entry.isDirectory();
    entries.push({ name: entry.name, path, isDir, c: classify(st.req, path, st.pathArgs, isDir) });
  }
  const files = entries.filter((e) => !e.isDir);
  const hidden = entries.filter((e) => e.c === "mask").length;
  const shown = entries.length - hidden;
  // never over a writable folder (the process may create files there) nor one holding a writable bind (${tmp})
  const replica =
    (roAbove || !writableInView(st.binds, dir)) && files.length > 0 && files.every((e) => e.c === "mask") && hidden > shown + 1 && ![...st.binds].some(([b, w]) => w && b !== dir && inside(b, dir));
  if (replica) st.masks.push({ path: dir, kind: "replica", source: await replicaOf(st, entries) });
  const under = inReplica || replica;
  for (const { path, isDir, c } of entries) {
    if (c === "mask") {
      if (!replica) st.masks.push({ path, kind: isDir ? "dir" : "file" });
    } else {
      // inside a replica a shown folder is the replica's empty one until the host's is bound back
      const bound = st.binds.get(path);
      // never more than the host-side order gave: a read-only mount above (or on it) wins over a writable bind
      const write = (bound ?? false) && !roAbove && c !== "readonly";
      const restore = replica || (under && bound !== undefined) ? { write } : undefined;
      if (restore) st.masks.push({ path, kind: "restore", write: restore.write });
      const ro = restore ? !restore.write : roAbove;
      if (c === "readonly") {
        if (!ro) {
          if (under) st.masks.push({ path, kind: "restore", write: false });
          else st.readOnly.push(path);
        }
        if (isDir) await walk(st, path, depth + 1, true, under);
      } else if (c === "descend") await walk(st, path, depth + 1, ro, under);
    }
    if (st.masks.length + st.readOnly.length > MAX_VIEW_MOUNTS) throw tooLarge(`more than ${MAX_VIEW_MOUNTS} paths to hide or protect inside the granted folders`);
  }
}

/** Removes the folder of replicas made for one run (they are read-only, so made writable first). */
export async function removeScratch(dir: string): Promise<void> {
  try {
    for (const e of await readdir(dir)) await chmod(join(dir, e), 0o700).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  } catch {
    /* best effort: a few empty files in the host's temporary folder */
  }
}

function tooLarge(what: string): CapabilityFailure {
  return new CapabilityFailure(`exec: cannot confine the process: ${what}; grant narrower folders`);
}
