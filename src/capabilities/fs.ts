import { constants, type Dirent } from "node:fs";
import { access, lstat, mkdir, open, opendir, readlink, rmdir, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { FileAccess } from "../manifest/schema.js";
import type { Grant } from "../policy/model.js";
import { checkFileAccess } from "../policy/check.js";
import type { Decision } from "../policy/model.js";
import { CapabilityFailure, PermissionDenied } from "./errors.js";
import { resolvePath, type ResolvedPath } from "./paths.js";

/** Largest file ctx.fs.readFile returns, and largest ctx.fs.writeFile accepts. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Bytes one attempt may read and write through ctx.fs together. @default 64 MiB */
export const DEFAULT_FS_BUDGET_BYTES = 64 * 1024 * 1024;
const MAX_LIST_ENTRIES = 10_000;
/** Reads and writes go in pieces of this size, with the deadline checked between them. */
const CHUNK_BYTES = 1024 * 1024;

/** Bytes left to an attempt for ctx.fs; shared by every request of the attempt. */
export interface FsBudget {
  bytesLeft: number;
}

export interface FsScope {
  grant: Grant;
  workspace: string;
  tmpDir: string;
  /** performance.now() value at which the attempt's time runs out */
  deadline: number;
  /** the attempt's byte budget; @default a fresh one of DEFAULT_FS_BUDGET_BYTES per scope */
  fsBudget?: FsBudget;
  /** records every decision (allowed or not) for the security log */
  record(op: string, target: string, decision: Decision, extra?: Record<string, unknown>): void;
}

const budgets = new WeakMap<FsScope, FsBudget>();

function budgetOf(scope: FsScope): FsBudget {
  if (scope.fsBudget) return scope.fsBudget;
  let b = budgets.get(scope);
  if (!b) {
    b = { bytesLeft: DEFAULT_FS_BUDGET_BYTES };
    budgets.set(scope, b);
  }
  return b;
}

/** Takes `bytes` from the attempt's budget before any I/O; refuses what would overrun it. */
function spend(scope: FsScope, op: string, path: string, bytes: number): void {
  const b = budgetOf(scope);
  if (bytes > b.bytesLeft) throw new CapabilityFailure(`${op} ${path}: this attempt's ctx.fs byte budget is spent (${b.bytesLeft} bytes left, ${bytes} needed)`);
  b.bytesLeft -= bytes;
}

function checkTime(scope: FsScope, op: string, path: string): void {
  if (performance.now() >= scope.deadline) throw new CapabilityFailure(`${op} ${path}: no time left in this attempt`, true);
}

async function target(raw: unknown, scope: FsScope, op: string): Promise<ResolvedPath> {
  if (typeof raw !== "string" || raw.length === 0) throw new CapabilityFailure(`${op}: path must be a non-empty string`);
  if (raw.length > 4096) throw new CapabilityFailure(`${op}: path is longer than 4096 characters`);
  if (raw.includes("\0")) {
    const d: Decision = { allowed: false, rule: "path", reason: "the path contains a NUL byte" };
    scope.record(op, JSON.stringify(raw), d);
    throw new PermissionDenied(op, JSON.stringify(raw), d);
  }
  return resolvePath(raw, scope.workspace);
}

/**
 * Checks the access before anything touches the path, so a path outside the grant gets a denial
 * (logged) and never an error that says what exists there. The message names the path as asked
 * for, never where a symlink points; the log keeps both.
 */
function authorizeAccess(scope: FsScope, op: string, t: ResolvedPath, access: FileAccess): void {
  const decision = checkFileAccess(scope.grant, t.real, access, scope.tmpDir, t.lexical);
  scope.record(op, t.real, decision, t.real !== t.lexical ? { requested: t.lexical } : undefined);
  if (!decision.allowed) throw new PermissionDenied(op, t.lexical, decision);
}

function fsFailure(op: string, path: string, err: unknown): CapabilityFailure | PermissionDenied {
  if (err instanceof CapabilityFailure || err instanceof PermissionDenied) return err;
  const code = (err as NodeJS.ErrnoException).code ?? "EIO";
  const transient = ["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EIO", "ETIMEDOUT"].includes(code);
  const what: Record<string, string> = {
    ENOENT: "no such file or folder",
    EISDIR: "is a folder",
    ENOTDIR: "not a folder",
    ENOTEMPTY: "folder is not empty",
    ELOOP: "is a symbolic link",
    EEXIST: "already exists (a symbolic link, or a file created meanwhile); not written through",
    EACCES: "the operating system refused access",
    ENXIO: "not a regular file",
    ENOTREG: "not a regular file (FIFOs, devices and sockets are refused)",
  };
  return new CapabilityFailure(`${op} ${path}: ${what[code] ?? code}`, transient);
}

const PROC_FD = "/proc/self/fd";
let procFd: Promise<boolean> | undefined;

/**
 * Runs `use` on the checked path with the folder holding it pinned: the folder is opened, the
 * kernel's name for what was opened must be the folder that was checked, and `use` gets a path
 * through that open folder (/proc/self/fd/N/name). A folder on the way swapped for a symlink after
 * the check (a skill's process can do that while ctx.fs works) is then never followed: the access
 * lands on the checked path or is refused. Where /proc is missing (not Linux) the checked path is
 * used as is.
 */
async function pinned<T>(scope: FsScope, op: string, t: ResolvedPath, use: (path: string) => Promise<T>): Promise<T> {
  const parent = dirname(t.real);
  procFd ??= access(PROC_FD).then(
    () => true,
    () => false,
  );
  if (parent === t.real || !(await procFd)) return use(t.real);
  const swapped = (opened?: string): PermissionDenied => {
    const d: Decision = { allowed: false, rule: "path", reason: "a folder on the way changed after the check (swapped for a symbolic link, moved or removed); not followed" };
    scope.record(op, t.real, d, { requested: t.lexical, ...(opened !== undefined ? { opened } : {}) });
    return new PermissionDenied(op, t.lexical, d);
  };
  let dir: FileHandle;
  try {
    dir = await open(parent, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    // the checked folder is a symbolic link now (O_DIRECTORY with O_NOFOLLOW says ENOTDIR for a link)
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code === "ELOOP" ||
      (code === "ENOTDIR" &&
        (await lstat(parent).then(
          (st) => st.isSymbolicLink(),
          () => false,
        )))
    )
      throw swapped();
    throw fsFailure(op, t.lexical, err);
  }
  try {
    const opened = await readlink(`${PROC_FD}/${dir.fd}`).catch(() => undefined);
    if (opened !== parent) throw swapped(opened);
    return await use(`${PROC_FD}/${dir.fd}/${basename(t.real)}`);
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/** Opens without ever blocking on a FIFO or device, then refuses anything but a regular file. */
async function openRegular(path: string, flags: number): Promise<FileHandle> {
  const fh = await open(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
    if (!st.isFile()) throw Object.assign(new Error("not a regular file"), { code: "ENOTREG" });
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

export async function readFile(scope: FsScope, path: unknown): Promise<string> {
  const t = await target(path, scope, "fs.readFile");
  authorizeAccess(scope, "fs.readFile", t, "read");
  checkTime(scope, "fs.readFile", t.lexical);
  let fh: FileHandle | undefined;
  try {
    fh = await pinned(scope, "fs.readFile", t, (p) => openRegular(p, constants.O_RDONLY));
    const { size } = await fh.stat();
    if (size > MAX_FILE_BYTES) throw new CapabilityFailure(`fs.readFile ${t.lexical}: file is larger than ${MAX_FILE_BYTES} bytes`);
    spend(scope, "fs.readFile", t.lexical, size);
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      checkTime(scope, "fs.readFile", t.lexical);
      const { bytesRead } = await fh.read(buf, off, Math.min(CHUNK_BYTES, size - off), off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.subarray(0, off).toString("utf8");
  } catch (err) {
    throw fsFailure("fs.readFile", t.lexical, err);
  } finally {
    await fh?.close();
  }
}

export async function writeFile(scope: FsScope, path: unknown, data: unknown): Promise<null> {
  if (typeof data !== "string") throw new CapabilityFailure("fs.writeFile: data must be a string");
  const bytes = Buffer.from(data, "utf8");
  if (bytes.length > MAX_FILE_BYTES) throw new CapabilityFailure(`fs.writeFile: data is larger than ${MAX_FILE_BYTES} bytes`);
  const t = await target(path, scope, "fs.writeFile");
  // `write` covers changing and creating files; `create` only creating new ones.
  const canCreate = !t.exists && checkFileAccess(scope.grant, t.real, "create", scope.tmpDir, t.lexical).allowed;
  authorizeAccess(scope, "fs.writeFile", t, canCreate ? "create" : "write");
  checkTime(scope, "fs.writeFile", t.lexical);
  spend(scope, "fs.writeFile", t.lexical, bytes.length);
  let fh: FileHandle | undefined;
  try {
    const parent = dirname(t.real);
    if (!t.exists) {
      let parentExists = true;
      try {
        await lstat(parent);
      } catch {
        parentExists = false;
      }
      if (!parentExists) {
        // Missing folders on the way are created only where the grant allows creating.
        const d = checkFileAccess(scope.grant, parent, "create", scope.tmpDir);
        scope.record("fs.mkdir", parent, d);
        if (!d.allowed) throw new PermissionDenied("fs.mkdir", dirname(t.lexical), d);
        await mkdir(parent, { recursive: true });
      }
    }
    // An existing file is truncated only after it proved to be a regular file.
    fh = await pinned(scope, "fs.writeFile", t, (p) => openRegular(p, constants.O_WRONLY | (t.exists ? 0 : constants.O_CREAT | constants.O_EXCL)));
    if (t.exists) await fh.truncate(0);
    let off = 0;
    while (off < bytes.length) {
      checkTime(scope, "fs.writeFile", t.lexical);
      const { bytesWritten } = await fh.write(bytes, off, Math.min(CHUNK_BYTES, bytes.length - off), off);
      off += bytesWritten;
    }
    return null;
  } catch (err) {
    if (err instanceof PermissionDenied) throw err;
    throw fsFailure("fs.writeFile", t.lexical, err);
  } finally {
    await fh?.close();
  }
}

export async function list(scope: FsScope, path: unknown): Promise<string[]> {
  const t = await target(path, scope, "fs.list");
  authorizeAccess(scope, "fs.list", t, "list");
  checkTime(scope, "fs.list", t.lexical);
  try {
    // the folder itself opened without following a symlink, then read through its descriptor
    const handle = await pinned(scope, "fs.list", t, (p) => open(p, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW));
    let dir;
    try {
      dir = await opendir((await procFd) ? `${PROC_FD}/${handle.fd}` : t.real);
    } finally {
      // opendir holds its own descriptor of the folder
      await handle.close().catch(() => undefined);
    }
    const names: string[] = [];
    let bytes = 0;
    try {
      for await (const entry of dir as AsyncIterable<Dirent>) {
        if (names.length >= MAX_LIST_ENTRIES) throw new CapabilityFailure(`fs.list ${t.lexical}: more than ${MAX_LIST_ENTRIES} entries`);
        names.push(entry.name);
        bytes += entry.name.length + 1;
      }
    } finally {
      await dir.close().catch(() => undefined);
    }
    spend(scope, "fs.list", t.lexical, bytes);
    return names.sort();
  } catch (err) {
    throw fsFailure("fs.list", t.lexical, err);
  }
}

export async function remove(scope: FsScope, path: unknown): Promise<null> {
  const t = await target(path, scope, "fs.delete");
  authorizeAccess(scope, "fs.delete", t, "delete");
  checkTime(scope, "fs.delete", t.lexical);
  try {
    await pinned(scope, "fs.delete", t, async (p) => {
      const st = await lstat(p);
      if (st.isDirectory()) await rmdir(p);
      else await unlink(p);
    });
    return null;
  } catch (err) {
    throw fsFailure("fs.delete", t.lexical, err);
  }
}
