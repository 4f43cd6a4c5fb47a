import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { writeAnchor } from "./anchor.js";
import { type CheckpointSigner, GENESIS, lineHash, signHead, stampLine } from "./chain.js";
import { FileLock } from "./file-lock.js";

/** How much of the file's end is read first to find its last line; doubled until a line is found. */
const TAIL_BYTES = 16 * 1024;

export interface FileWriterOptions {
  file: string;
  /** HMAC key of the chain */
  key?: string | undefined;
  /** signs checkpoints and the anchor; none: they are written unsigned */
  signer?: CheckpointSigner | undefined;
  /** where the head is also recorded, outside the log */
  anchor?: string | undefined;
  /** a checkpoint after this many lines from this writer; @default 1000 */
  checkpointEveryLines?: number | undefined;
  /** and at least this often while lines are written; @default 10000 */
  checkpointEveryMs?: number | undefined;
  /** an outage began, or ended: reported once each */
  onStatus: (message: string) => void;
}

/** Why a write failed, in words an operator can act on ("EEXIST" alone when a parent is a file helps nobody). */
export function describeWriteError(file: string, err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  if (code === "EEXIST" || code === "ENOTDIR") {
    for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
      try {
        if (!statSync(dir).isDirectory()) return `${dir} is a file, not a folder (${code})`;
        break;
      } catch {
        /* does not exist: look further up */
      }
    }
  }
  if (code === "ENOSPC") return "the disk is full (ENOSPC)";
  if (code === "EACCES" || code === "EPERM") return `no permission to write it (${code})`;
  if (code === "EROFS") return "the file system is read-only (EROFS)";
  return code || err.message;
}

/** What an outage means for calls under audit.failMode: open (AuditLog rewords it for closed). */
export const OUTAGE_CONSEQUENCE = "calls go on, lost events are counted and recorded as a log.gap event once it can be written again";

/** The one warning an outage of the log file gets. */
export function outageMessage(file: string, err: NodeJS.ErrnoException): string {
  return `skillbox: cannot write the security log to ${file}: ${describeWriteError(file, err)}; ${OUTAGE_CONSEQUENCE}`;
}

const now = () => new Date().toISOString();

/** The contract fields of an event that belongs to no call. */
const NO_CALL = { callId: null, skill: null, caller: null, trust: null, session: null };

/**
 * Writes batches of security-log lines to one file, keeping one hash chain when several processes
 * write it: under the lock it reads the file's real last line, stamps each line with the next
 * `seq` and the hash of the line before it as `prev`, appends the batch, and lets go. Synchronous;
 * it runs on the audit writer thread, off every call's path (the host's main thread uses it
 * directly only when that thread is gone).
 *
 * Nothing is lost without a trace: a short write is completed; a batch that cannot be written whole
 * (full disk, read-only file) is cut back to its last complete line, the rest counted; the count,
 * with when it began and ended, is written as a `log.gap` event as soon as a write succeeds again.
 * Each outage and each recovery is reported once.
 */
export class FileWriter {
  private fd: number | undefined;
  private readonly lock: FileLock;
  /** where our last write left the file: when nobody else wrote since, the tail need not be read */
  private last: { size: number; seq: number; prev: string } | undefined;
  private lost = { count: 0, from: "", to: "", reason: "" };
  private down = false;
  private sinceCheckpoint = 0;
  private lastCheckpointMs = Date.now();
  private readonly everyLines: number;
  private readonly everyMs: number;
  /** events that could not be written, all told */
  lostTotal = 0;
  /** false from a failed write until a write succeeds */
  healthy = true;

  constructor(private readonly o: FileWriterOptions) {
    this.lock = new FileLock(`${o.file}.lck`);
    this.everyLines = o.checkpointEveryLines ?? 1000;
    this.everyMs = o.checkpointEveryMs ?? 10_000;
  }

  /** Counts events dropped before they reached this writer (a queue over its bound). */
  dropped(count: number, from: string, to: string): void {
    this.noteLost(count, from, to, "queue full");
  }

  private noteLost(count: number, from: string, to: string, reason: string): void {
    if (count <= 0) return;
    if (this.lost.count === 0) this.lost.from = from;
    this.lost.count += count;
    this.lost.to = to;
    this.lost.reason ||= reason;
    this.lostTotal += count;
  }

  private open(): number {
    if (this.fd === undefined) {
      mkdirSync(dirname(this.o.file), { recursive: true });
      this.fd = openSync(this.o.file, "a+", 0o600);
    }
    return this.fd;
  }

  /**
   * Writes a batch (JSON objects without seq/prev or newline). Returns false when the lock is held
   * by another writer (try again shortly); true when the batch was written or counted as lost.
   */
  write(lines: string[], opts: { checkpoint?: "close" } = {}): boolean {
    // A closing writer seals the tail with a checkpoint, unless it wrote nothing since its last one.
    const closing = opts.checkpoint !== undefined && this.sinceCheckpoint + lines.length > 0 ? opts.checkpoint : undefined;
    if (lines.length === 0 && closing === undefined && this.lost.count === 0) return true;
    const started = now();
    let fd: number;
    try {
      fd = this.open();
      if (!this.lock.tryAcquire()) return false;
    } catch (err) {
      this.failed(lines.length, started, err as NodeJS.ErrnoException);
      return true;
    }
    try {
      this.writeLocked(fd, lines, closing, started);
    } finally {
      this.lock.release();
    }
    return true;
  }

  private writeLocked(fd: number, lines: string[], closing: "close" | undefined, started: string): void {
    let sizeBefore: number;
    let head: { seq: number; prev: string; complete: boolean };
    try {
      sizeBefore = fstatSync(fd).size;
      head = this.tail(fd, sizeBefore);
    } catch (err) {
      this.failed(lines.length, started, err as NodeJS.ErrnoException);
      return;
    }
    const gap = this.lost.count > 0 ? { ...this.lost } : undefined;
    const events: string[] = [];
    if (gap) events.push(JSON.stringify({ time: now(), level: "warn", event: "log.gap", ...NO_CALL, lost: gap.count, from: gap.from, to: gap.to, reason: gap.reason }));
    events.push(...lines);
    let seq = head.seq;
    let prev = head.prev;
    // A line torn by a crash is closed, and chained from as it is.
    const chunks: string[] = [head.complete ? "" : "\n"];
    const ends: number[] = []; // byte offset (from sizeBefore) after each complete line
    let bytes = Buffer.byteLength(chunks[0]!);
    const add = (json: string) => {
      const line = stampLine(json, ++seq, prev);
      prev = lineHash(line, this.o.key);
      chunks.push(line, "\n");
      bytes += Buffer.byteLength(line) + 1;
      ends.push(bytes);
    };
    for (const json of events) add(json);
    this.sinceCheckpoint += lines.length;
    const checkpoint = closing !== undefined || this.sinceCheckpoint >= this.everyLines || (lines.length > 0 && Date.now() - this.lastCheckpointMs >= this.everyMs);
    if (checkpoint) {
      const sig = this.o.signer ? signHead(this.o.signer, seq, prev) : null;
      add(JSON.stringify({ time: now(), level: "info", event: "log.checkpoint", ...NO_CALL, head: { seq, hash: prev }, sig, reason: closing ?? "interval" }));
    }
    const buf = Buffer.from(chunks.join(""));
    let written = 0;
    try {
      while (written < buf.length) written += writeSync(fd, buf, written, buf.length - written);
    } catch (err) {
      // Keep the complete lines that fit, cut the torn rest, count what did not make it.
      const kept = ends.filter((e) => e <= written).length;
      const keptBytes = kept > 0 ? ends[kept - 1]! : 0;
      try {
        ftruncateSync(fd, sizeBefore + keptBytes);
      } catch {
        /* the torn line stays; the next batch closes it and chains on from it */
      }
      this.last = undefined;
      const gapLines = gap ? 1 : 0;
      const lostHere = Math.max(0, Math.min(lines.length, events.length - Math.max(kept, gapLines)));
      if (gap && kept >= 1) this.lost = { count: 0, from: "", to: "", reason: "" }; // the gap event made it
      this.failed(lostHere, started, err as NodeJS.ErrnoException);
      return;
    }
    this.last = { size: sizeBefore + buf.length, seq, prev };
    if (gap) this.lost = { count: 0, from: "", to: "", reason: "" };
    if (checkpoint) {
      this.sinceCheckpoint = 0;
      this.lastCheckpointMs = Date.now();
      if (this.o.anchor) this.anchor(seq, prev);
    }
    if (this.down) {
      this.down = false;
      this.o.onStatus(
        `skillbox: the security log ${this.o.file} is writable again${gap ? `; ${gap.count} event(s) from ${gap.from} to ${gap.to} could not be written, recorded as a log.gap event` : ""}`,
      );
    }
    this.healthy = true;
  }

  private anchor(seq: number, hash: string): void {
    try {
      writeAnchor(this.o.anchor!, { seq, hash, time: now(), sig: this.o.signer ? signHead(this.o.signer, seq, hash) : null });
    } catch (err) {
      this.o.onStatus(`skillbox: cannot write the audit anchor ${this.o.anchor}: ${describeWriteError(this.o.anchor!, err as NodeJS.ErrnoException)}`);
    }
  }

  private failed(count: number, from: string, err: NodeJS.ErrnoException): void {
    this.noteLost(count, from, now(), err.code ?? "error");
    this.healthy = false;
    if (count === 0 && this.lost.count === 0) return;
    if (!this.down) {
      this.down = true;
      this.o.onStatus(outageMessage(this.o.file, err));
    }
  }

  private tail(fd: number, size: number): { seq: number; prev: string; complete: boolean } {
    if (size === 0) return { seq: 0, prev: GENESIS, complete: true };
    if (this.last && this.last.size === size) return { seq: this.last.seq, prev: this.last.prev, complete: true };
    for (let len = Math.min(size, TAIL_BYTES); ; len = Math.min(size, len * 2)) {
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, size - len);
      const text = buf.toString("utf8");
      const complete = text.endsWith("\n");
      const body = complete ? text.slice(0, -1) : text;
      const nl = body.lastIndexOf("\n");
      if (nl < 0 && len < size) continue; // the last line is longer than what was read
      const last = body.slice(nl + 1);
      const seq = Number(/^\{"seq":(\d+)/.exec(last)?.[1] ?? /"seq":(\d+)/.exec(last)?.[1] ?? 0);
      return { seq, prev: lineHash(last, this.o.key), complete };
    }
  }

  close(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}
