import { mkdirSync, rmdirSync, statSync } from "node:fs";

/** A lock older than this is taken to be left by a crashed process. */
const STALE_LOCK_MS = 10_000;

/** Takes a cross-process lock (an atomic mkdir) if free; clears a stale one. Throws only for unexpected errors. */
export function tryLock(lockDir: string): boolean {
  try {
    mkdirSync(lockDir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    try {
      if (Date.now() - statSync(lockDir).mtimeMs > STALE_LOCK_MS) rmdirSync(lockDir);
    } catch {
      /* someone else removed it */
    }
    return false;
  }
}

export function unlock(lockDir: string): void {
  try {
    rmdirSync(lockDir);
  } catch {
    /* already gone */
  }
}

/** Runs `fn` holding the lock, waiting (spinning) up to `waitMs` for it. For short critical sections only. */
export function withLockSync<T>(lockDir: string, fn: () => T, waitMs = 2000): T {
  const until = Date.now() + waitMs;
  while (!tryLock(lockDir)) {
    if (Date.now() > until) throw Object.assign(new Error(`could not lock ${lockDir}`), { code: "ELOCKED" });
  }
  try {
    return fn();
  } finally {
    unlock(lockDir);
  }
}
