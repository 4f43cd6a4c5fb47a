import { closeSync, fstatSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";

/** A lock from another machine (shared folder), or one whose owner cannot be read, is stale after this. */
const STALE_FOREIGN_MS = 30_000;
/** A break-lock is held for microseconds; one this old was left by a process that died holding it. */
const STALE_BREAK_MS = 5_000;

const HOST = hostname();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function exclusiveCreate(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } catch (err) {
    // A full disk can leave the file created but empty: never leave an ownerless lock behind.
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
  closeSync(fd);
  return true;
}

/**
 * A cross-process lock: a file created with O_EXCL holding the owner's pid and host name. A lock
 * whose owner died (same host: its pid is gone; elsewhere: it is old) is stale, and is taken over
 * atomically: only the process holding the lock's break-lock (another O_EXCL file) may remove it,
 * and only after checking, under that break-lock, that it is still the same stale file. So four
 * writers finding one stale lock at once still end up with one owner at a time.
 */
export class FileLock {
  private readonly content: string;
  private readonly breakPath: string;

  constructor(readonly path: string) {
    this.content = `${process.pid} ${HOST}\n`;
    this.breakPath = `${path}.break`;
  }

  /** Takes the lock if it is free (or stale: then the next try may get it). Throws only for unexpected errors. */
  tryAcquire(): boolean {
    if (exclusiveCreate(this.path, this.content)) return true;
    this.clearIfStale();
    return false;
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private isStale(content: string, mtimeMs: number): boolean {
    const m = /^(\d+) (\S+)\n$/.exec(content);
    if (m && m[2] === HOST) return !alive(Number(m[1]));
    // Another machine's lock, or one being written this instant: only age tells.
    return Date.now() - mtimeMs > STALE_FOREIGN_MS;
  }

  private clearIfStale(): void {
    let seen: { ino: number; content: string; mtimeMs: number };
    try {
      const st = statSync(this.path);
      seen = { ino: st.ino, content: readFileSync(this.path, "utf8"), mtimeMs: st.mtimeMs };
    } catch {
      return; // gone already: the next try may take it
    }
    if (!this.isStale(seen.content, seen.mtimeMs)) return;
    if (!exclusiveCreate(this.breakPath, this.content)) {
      try {
        const st = statSync(this.breakPath);
        if (Date.now() - st.mtimeMs > STALE_BREAK_MS) unlinkSync(this.breakPath);
      } catch {
        /* someone else cleared it */
      }
      return;
    }
    try {
      // Under the break-lock nobody else removes the lock, so the file still there is either the
      // stale one we saw (remove it) or one a live owner created after it went (keep it).
      let fd: number | undefined;
      try {
        fd = openSync(this.path, "r");
        const st = fstatSync(fd);
        if (st.ino === seen.ino && readFileSync(fd, "utf8") === seen.content) unlinkSync(this.path);
      } catch {
        /* gone meanwhile */
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
    } finally {
      try {
        unlinkSync(this.breakPath);
      } catch {
        /* removed as stale by someone: harmless */
      }
    }
  }
}
