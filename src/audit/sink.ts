import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from "node:fs";
import { tryLock, unlock } from "../util/lock.js";
import { dirname } from "node:path";
import { GENESIS, lineHash } from "./chain.js";
import type { LineSink } from "./pg-sink.js";

/** How much of the file's end is read first to find its last line; doubled until a line is found. */
const TAIL_BYTES = 16 * 1024;

/**
 * Append-only file sink for the security log that keeps one hash chain even when several
 * processes write the same file. Lines are queued (a call never waits for the disk) and written
 * once per event-loop turn as one batch: the sink takes a cross-process lock (an atomic mkdir),
 * reads the file's real last line, stamps each line with the next `seq` and the hash of the line
 * before it as `prev`, appends the batch with one O_APPEND write, and lets go. A lock held by
 * another process is waited for without blocking. At process exit the queue is written
 * synchronously. Failures are counted, never thrown.
 */
export class ChainSink implements LineSink {
  private fd: number | undefined;
  private queue: string[] = [];
  private scheduled = false;
  private lockTries = 0;
  private waiters: (() => void)[] = [];
  private readonly lockDir: string;
  /** where our last write left the file: when nobody else wrote since, the tail need not be read */
  private last: { size: number; seq: number; prev: string } | undefined;
  /** lines that could not be written */
  failed = 0;
  /** false after a write failed, until a later write succeeds */
  healthy = true;

  constructor(
    readonly file: string,
    private readonly key: string | undefined,
    private readonly onError: (err: NodeJS.ErrnoException) => void,
  ) {
    this.lockDir = `${file}.lock`;
    this.open();
    process.on("exit", this.onExit);
  }

  private readonly onExit = () => this.flushSync();

  private open(): boolean {
    if (this.fd !== undefined) return true;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, "a+", 0o600);
      return true;
    } catch (err) {
      this.healthy = false;
      this.onError(err as NodeJS.ErrnoException);
      return false;
    }
  }

  /** Queues one JSON line (without seq/prev, without newline). */
  write(json: string): void {
    this.queue.push(json);
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (delayMs === 0) setImmediate(() => this.drain());
    else setTimeout(() => this.drain(), delayMs);
  }

  private drain(): void {
    this.scheduled = false;
    if (this.queue.length > 0) {
      if (!this.open()) {
        this.failed += this.queue.length;
        this.queue = [];
      } else {
        let locked = false;
        try {
          locked = this.tryLock();
        } catch (err) {
          this.fail(this.queue.splice(0).length, err as NodeJS.ErrnoException);
        }
        if (!locked && this.queue.length > 0) {
          // Another writer holds the lock: try again shortly, without blocking this process.
          if (++this.lockTries < 10_000) return this.schedule(this.lockTries < 20 ? 0 : 1);
          this.fail(this.queue.splice(0).length, Object.assign(new Error(`could not lock ${this.lockDir}`), { code: "ELOCKED" }));
        }
        if (locked) {
          this.lockTries = 0;
          this.writeLocked();
        }
      }
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Stamps and appends the queue; the caller holds the lock, which this releases. */
  private writeLocked(): void {
    const lines = this.queue;
    this.queue = [];
    try {
      const text = this.stamp(lines);
      writeSync(this.fd!, text);
      this.healthy = true;
      this.last = { size: fstatSync(this.fd!).size, seq: this.stampedSeq, prev: this.stampedPrev };
    } catch (err) {
      this.last = undefined;
      this.fail(lines.length, err as NodeJS.ErrnoException);
    } finally {
      this.unlock();
    }
  }

  private fail(count: number, err: NodeJS.ErrnoException): void {
    this.failed += count;
    this.healthy = false;
    this.onError(err);
  }

  private stampedSeq = 0;
  private stampedPrev = GENESIS;

  /** Under the lock: continue the chain from the file's last line. */
  private stamp(lines: string[]): string {
    const { seq, prev, complete } = this.tail();
    let s = seq;
    let p = prev;
    let out = complete ? "" : "\n"; // a line torn by a crash is closed, and chained from as it is
    for (const json of lines) {
      const line = `{"seq":${++s},"prev":"${p}",${json.slice(1)}`;
      p = lineHash(line, this.key);
      out += line + "\n";
    }
    this.stampedSeq = s;
    this.stampedPrev = p;
    return out;
  }

  private tail(): { seq: number; prev: string; complete: boolean } {
    const fd = this.fd!;
    const size = fstatSync(fd).size;
    if (size === 0) return { seq: 0, prev: GENESIS, complete: true };
    // Nobody wrote since our last batch: the chain goes on from what we wrote.
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
      return { seq, prev: lineHash(last, this.key), complete };
    }
  }

  private tryLock(): boolean {
    return tryLock(this.lockDir);
  }

  private unlock(): void {
    unlock(this.lockDir);
  }

  /** Resolves when every line queued so far has been written (or has failed). */
  flush(): Promise<void> {
    if (!this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Writes what is queued now, synchronously (at process exit), waiting up to 2 s for the lock. */
  flushSync(): void {
    if (this.queue.length === 0 || !this.open()) return;
    const until = Date.now() + 2000;
    let locked = false;
    while (!locked && Date.now() < until) {
      try {
        locked = this.tryLock();
      } catch {
        break;
      }
    }
    if (locked) this.writeLocked();
    else this.failed += this.queue.splice(0).length;
  }

  async close(): Promise<void> {
    await this.flush();
    this.flushSync();
    process.off("exit", this.onExit);
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }
}
