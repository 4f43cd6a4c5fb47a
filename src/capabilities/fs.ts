import { constants, type Dirent } from "node:fs";
import { lstat, mkdir, open, opendir, rmdir, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
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

function fsFailure(op: string, path: string, err: unknown): CapabilityFailure {
  if (err instanceof CapabilityFailure) return err;
  const code = (err as NodeJS.ErrnoException).code ?? "EIO";
  const transient = ["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EIO", "ETIMEDOUT"].includes(code);
  const what: Record<string, string> = { ENOENT: "no such file or folder", EISDIR: "is a folder", ENOTDIR: "not a folder", ENOTEMPTY: "folder is not empty", ELOOP: "is a symbolic link", EEXIST: "already exists (a symbolic link, or a file created meanwhile); not written through", EACCES: "the operating system refused access", ENXIO: "not a regular file", ENOTREG: "not a regular file (FIFOs, devices and sockets are refused)" };
  return new CapabilityFailure(`${op} ${path}: ${what[code] ?? code}`, transient);
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
    fh = await openRegular(t.real, constants.O_RDONLY);
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
    fh = await openRegular(t.real, constants.O_WRONLY | (t.exists ? 0 : constants.O_CREAT | constants.O_EXCL));
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
    const dir = await opendir(t.real);
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
    const st = await lstat(t.real);
    if (st.isDirectory()) await rmdir(t.real);
    else await unlink(t.real);
    return null;
  } catch (err) {
    throw fsFailure("fs.delete", t.lexical, err);
  }
}
