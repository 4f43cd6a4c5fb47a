import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import type { HeadSignature } from "./chain.js";
import type { AnchorRecord } from "./verify.js";

/**
 * The anchor: the chain's head (seq and line hash, signed when a key is set) kept outside the log
 * file, where the operator points `audit.anchor`. Someone who cuts lines off the end of the log
 * must also roll the anchor back; kept on another volume, host or account, that is out of reach.
 */
export function writeAnchor(file: string, head: { seq: number; hash: string; time: string; sig: HeadSignature | null }): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    unlinkSync(tmp); // left by a crash; and never write through whatever else was put there
  } catch {
    /* none */
  }
  const fd = openSync(tmp, "wx", 0o600); // O_EXCL: fails on a planted symlink instead of following it
  try {
    writeSync(fd, JSON.stringify({ v: 1, ...head }) + "\n");
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file); // atomic: a reader sees the old head or the new one
}

/** Reads an anchor file; throws a readable error for anything that is not one. */
export function readAnchor(file: string): AnchorRecord {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`${file}: not a skillbox anchor (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const a = v as { seq?: unknown; hash?: unknown; time?: unknown; sig?: unknown };
  if (typeof a !== "object" || a === null || typeof a.seq !== "number" || !Number.isInteger(a.seq) || a.seq < 1 || typeof a.hash !== "string" || !/^[0-9a-f]{64}$/.test(a.hash)) {
    throw new Error(`${file}: not a skillbox anchor (expected {"seq": N, "hash": "<64 hex>"})`);
  }
  return { seq: a.seq, hash: a.hash, ...(typeof a.time === "string" ? { time: a.time } : {}), ...(a.sig ? { sig: a.sig } : {}) };
}
