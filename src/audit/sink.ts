import { close, mkdirSync, openSync, write } from "node:fs";
import { dirname } from "node:path";

/**
 * Append-only file sink for the security log. Lines are queued and written by one
 * `write()` at a time, whole lines per call on an O_APPEND descriptor, so calls never wait
 * for the disk and concurrent writers never interleave partial lines. Failures are counted,
 * never thrown.
 */
export class AppendSink {
  private fd: number | undefined;
  private queue: string[] = [];
  private writing = false;
  private waiters: (() => void)[] = [];
  /** lines that could not be written */
  failed = 0;

  constructor(
    readonly file: string,
    private readonly onError: (err: NodeJS.ErrnoException) => void,
  ) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      this.fd = openSync(file, "a", 0o600);
    } catch (err) {
      this.onError(err as NodeJS.ErrnoException);
    }
  }

  get writable(): boolean {
    return this.fd !== undefined;
  }

  write(line: string): void {
    if (this.fd === undefined) {
      this.failed++;
      return;
    }
    this.queue.push(line);
    if (!this.writing) this.drain();
  }

  private drain(): void {
    const fd = this.fd;
    if (this.queue.length === 0 || fd === undefined) {
      this.writing = false;
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.writing = true;
    const lines = this.queue;
    this.queue = [];
    const buf = Buffer.from(lines.join(""));
    const writeAll = (offset: number) => {
      write(fd, buf, offset, buf.length - offset, null, (err, n) => {
        if (err) {
          this.failed += lines.length;
          this.onError(err);
          this.drain();
        } else if (offset + n < buf.length) writeAll(offset + n);
        else this.drain();
      });
    };
    writeAll(0);
  }

  /** Resolves when every line queued so far has been written (or has failed). */
  flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    await this.flush();
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) await new Promise<void>((resolve) => close(fd, () => resolve()));
  }
}
