import { closeSync, constants, existsSync, mkdirSync, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, rmdirSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import type { FileAccess } from "../manifest/schema.js";
import type { Grant } from "../policy/model.js";
import { checkFileAccess } from "../policy/check.js";
import type { Decision } from "../policy/model.js";
import { CapabilityFailure, PermissionDenied } from "./errors.js";

/** Largest file ctx.fs.readFile returns, and largest ctx.fs.writeFile accepts. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
const MAX_LIST_ENTRIES = 10_000;

export interface FsScope {
  grant: Grant;
  workspace: string;
  tmpDir: string;
  /** records every decision (allowed or not) for the security log */
  record(op: string, target: string, decision: Decision, extra?: Record<string, unknown>): void;
}

interface Target {
  lexical: string;
  real: string;
  exists: boolean;
}

/** Normalizes and symlink-resolves a path a skill asked for. A new file resolves through its parent. */
function resolveTarget(raw: unknown, scope: FsScope, op: string): Target {
  if (typeof raw !== "string" || raw.length === 0) throw new CapabilityFailure(`${op}: path must be a non-empty string`);
  if (raw.includes("\0")) {
    const d: Decision = { allowed: false, rule: "path", reason: "the path contains a NUL byte" };
    scope.record(op, JSON.stringify(raw), d);
    throw new PermissionDenied(op, raw, d);
  }
  const lexical = resolve(isAbsolute(raw) ? raw : resolve(scope.workspace, raw));
  try {
    return { lexical, real: realpathSync.native(lexical), exists: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw fsFailure(op, lexical, err);
  }
  // The target does not exist (yet): resolve its nearest existing ancestor and append the rest,
  // so a symlink anywhere on the way is followed before the check, never after.
  let ancestor = dirname(lexical);
  const restParts = [basename(lexical)];
  for (;;) {
    try {
      const real = realpathSync.native(ancestor);
      return { lexical, real: resolve(real, ...restParts), exists: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== "ENOENT" && code !== "ENOTDIR") || ancestor === "/") return { lexical, real: lexical, exists: false };
      restParts.unshift(basename(ancestor));
      ancestor = dirname(ancestor);
    }
  }
}

function authorizeAccess(scope: FsScope, op: string, t: Target, access: FileAccess): void {
  const decision = checkFileAccess(scope.grant, t.real, access, scope.tmpDir, t.lexical);
  scope.record(op, t.real, decision);
  if (!decision.allowed) throw new PermissionDenied(op, t.real === t.lexical ? t.real : `${t.lexical} (-> ${t.real})`, decision);
}

function fsFailure(op: string, path: string, err: unknown): CapabilityFailure {
  const code = (err as NodeJS.ErrnoException).code ?? "EIO";
  const transient = ["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EIO", "ETIMEDOUT"].includes(code);
  const what: Record<string, string> = { ENOENT: "no such file or folder", EISDIR: "is a folder", ENOTDIR: "not a folder", ENOTEMPTY: "folder is not empty", ELOOP: "is a symbolic link", EEXIST: "already exists (a symbolic link, or a file created meanwhile); not written through", EACCES: "the operating system refused access" };
  return new CapabilityFailure(`${op} ${path}: ${what[code] ?? code}`, transient);
}

export function readFile(scope: FsScope, path: unknown): string {
  const t = resolveTarget(path, scope, "fs.readFile");
  authorizeAccess(scope, "fs.readFile", t, "read");
  let fd: number | undefined;
  try {
    fd = openSync(t.real, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: st.isDirectory() ? "EISDIR" : "EINVAL" });
    if (st.size > MAX_FILE_BYTES) throw new CapabilityFailure(`fs.readFile ${t.real}: file is larger than ${MAX_FILE_BYTES} bytes`);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off).toString("utf8");
  } catch (err) {
    if (err instanceof CapabilityFailure) throw err;
    throw fsFailure("fs.readFile", t.real, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFile(scope: FsScope, path: unknown, data: unknown): null {
  if (typeof data !== "string") throw new CapabilityFailure("fs.writeFile: data must be a string");
  if (Buffer.byteLength(data) > MAX_FILE_BYTES) throw new CapabilityFailure(`fs.writeFile: data is larger than ${MAX_FILE_BYTES} bytes`);
  const t = resolveTarget(path, scope, "fs.writeFile");
  // `write` covers changing and creating files; `create` only creating new ones.
  const canCreate = !t.exists && checkFileAccess(scope.grant, t.real, "create", scope.tmpDir, t.lexical).allowed;
  authorizeAccess(scope, "fs.writeFile", t, canCreate ? "create" : "write");
  let fd: number | undefined;
  try {
    const parent = dirname(t.real);
    if (!t.exists && !existsSync(parent)) {
      // Missing folders on the way are created only where the grant allows creating.
      const d = checkFileAccess(scope.grant, parent, "create", scope.tmpDir);
      scope.record("fs.mkdir", parent, d);
      if (!d.allowed) throw new PermissionDenied("fs.mkdir", parent, d);
      mkdirSync(parent, { recursive: true });
    }
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (t.exists ? constants.O_TRUNC : constants.O_EXCL);
    fd = openSync(t.real, flags, 0o644);
    writeSync(fd, data);
    return null;
  } catch (err) {
    if (err instanceof PermissionDenied) throw err;
    throw fsFailure("fs.writeFile", t.real, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function list(scope: FsScope, path: unknown): string[] {
  const t = resolveTarget(path, scope, "fs.list");
  authorizeAccess(scope, "fs.list", t, "list");
  try {
    const names = readdirSync(t.real);
    if (names.length > MAX_LIST_ENTRIES) throw new CapabilityFailure(`fs.list ${t.real}: more than ${MAX_LIST_ENTRIES} entries`);
    return names.sort();
  } catch (err) {
    if (err instanceof CapabilityFailure) throw err;
    throw fsFailure("fs.list", t.real, err);
  }
}

export function remove(scope: FsScope, path: unknown): null {
  const t = resolveTarget(path, scope, "fs.delete");
  authorizeAccess(scope, "fs.delete", t, "delete");
  try {
    const st = lstatSync(t.real);
    if (st.isDirectory()) rmdirSync(t.real);
    else unlinkSync(t.real);
    return null;
  } catch (err) {
    throw fsFailure("fs.delete", t.real, err);
  }
}
