import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import { FileWriter, outageMessage } from "./file-writer.js";
import type { LineSink } from "./pg-sink.js";
import { SLOT, SLOTS, signerOf, type FromWriter, type ToWriter, type WriterConfig } from "./writer-protocol.js";

/** Lines handed to the writer thread and not yet written, beyond which new ones are counted as lost. */
const MAX_IN_FLIGHT = 100_000;
/** How long process exit (and close) wait for the writer thread. */
const EXIT_WAIT_MS = 5000;
const CLOSE_WAIT_MS = 10_000;

/**
 * The file sink of the security log. The host's main thread only queues lines and hands them,
 * once per turn, to a writer thread that owns the file (see FileWriter: lock, chain, checked
 * writes, gaps, checkpoints, anchor), so a sandbox reply never waits behind the disk. Health and
 * counts come back through shared memory, readable synchronously (audit.failMode: closed needs
 * that). At process exit the main thread waits, bounded, for the thread to write what is queued.
 * Should the thread die, the main thread writes on itself.
 */
export class ChainSink implements LineSink {
  private worker: Worker | undefined;
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
  private pending: string[] = [];
  private posting = false;
  private posted = 0;
  private dropped = { count: 0, from: "", to: "" };
  private droppedTotal = 0;
  private nextId = 0;
  private readonly waiters = new Map<number, () => void>();
  private inline: FileWriter | undefined;
  private inlineScheduled = false;
  private preflightOk = true;
  private closed = false;
  /** close() has asked the writer thread to finish: its exit is expected from then on. */
  private closing = false;
  private lastStatus = "";
  private readonly signer: ReturnType<typeof signerOf>;

  constructor(
    readonly file: string,
    private readonly config: WriterConfig,
    private readonly onStatus: (message: string) => void,
  ) {
    this.signer = signerOf(config); // a bad key is refused here, at open
    Atomics.store(this.ctrl, SLOT.healthy, 1);
    this.preflight();
    try {
      this.worker = new Worker(new URL("./writer-thread.js", import.meta.url), { workerData: { config, shared: this.ctrl.buffer } });
      this.worker.on("message", (m: FromWriter) => this.onMessage(m));
      this.worker.on("error", (err) => this.threadLost(err));
      this.worker.on("exit", () => this.threadLost());
      // After the listeners: adding a 'message' listener refs the worker's port again.
      this.worker.unref();
    } catch (err) {
      this.threadLost(err as Error);
    }
    process.on("exit", this.onExit);
  }

  /** Opens the file once here, so a log that cannot be written is known before the first call. */
  private preflight(): void {
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      closeSync(openSync(this.file, "a", 0o600));
    } catch (err) {
      this.preflightOk = false;
      Atomics.store(this.ctrl, SLOT.healthy, 0);
      this.lastStatus = outageMessage(this.file, err as NodeJS.ErrnoException);
      this.onStatus(this.lastStatus);
    }
  }

  private readonly onExit = () => this.flushSync();

  get failed(): number {
    return Atomics.load(this.ctrl, SLOT.lost) + (this.inline?.lostTotal ?? 0) + this.droppedTotal;
  }

  get healthy(): boolean {
    if (this.inline) return this.inline.healthy;
    const h = Atomics.load(this.ctrl, SLOT.healthy) === 1;
    // Recovered from a failed preflight once the writer has written.
    if (!this.preflightOk && h && Atomics.load(this.ctrl, SLOT.processed) > 0) this.preflightOk = true;
    return h && this.preflightOk;
  }

  write(json: string): void {
    if (this.closed) return;
    if (this.posted - Atomics.load(this.ctrl, SLOT.processed) + this.pending.length >= MAX_IN_FLIGHT && !this.inline) {
      const t = new Date().toISOString();
      if (this.dropped.count === 0) this.dropped.from = t;
      this.dropped.count++;
      this.dropped.to = t;
      this.droppedTotal++;
      return;
    }
    this.pending.push(json);
    if (!this.posting) {
      this.posting = true;
      queueMicrotask(() => this.post());
    }
  }

  /** Hands the queued lines over: one message per turn, whatever the number of events. */
  private post(): void {
    this.posting = false;
    if (this.pending.length === 0 && this.dropped.count === 0) return;
    const lines = this.pending;
    this.pending = [];
    if (this.inline) {
      this.inlineQueue.push(...lines);
      this.scheduleInline();
      return;
    }
    const msg: ToWriter = { t: "lines", lines };
    if (this.dropped.count > 0) {
      msg.dropped = this.dropped;
      this.droppedTotal -= this.dropped.count; // the writer counts them from now on
      this.dropped = { count: 0, from: "", to: "" };
    }
    this.posted += lines.length;
    this.worker!.postMessage(msg);
  }

  private onMessage(m: FromWriter): void {
    if (m.t === "status") {
      // The open that failed here at start fails there too: say it once.
      if (m.message !== this.lastStatus) this.onStatus(m.message);
      this.lastStatus = m.message;
    } else
      for (const [id, resolve] of this.waiters)
        if (id <= m.id) {
          this.waiters.delete(id);
          resolve();
        }
  }

  /** Resolves when every line queued so far is written (or counted as lost). */
  flush(): Promise<void> {
    return this.request("flush");
  }

  private request(t: "flush" | "close"): Promise<void> {
    this.post();
    if (this.inline) {
      this.drainInline(t === "close" ? "close" : undefined);
      return Promise.resolve();
    }
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.worker!.postMessage({ t, id } satisfies ToWriter);
    });
  }

  /** Writes what is queued now, synchronously (process exit): waits for the writer thread, bounded. */
  flushSync(): void {
    this.post();
    if (this.inline) return this.drainInline();
    const id = ++this.nextId;
    this.worker!.postMessage({ t: "flush", id } satisfies ToWriter);
    const until = Date.now() + EXIT_WAIT_MS;
    for (let seen = Atomics.load(this.ctrl, SLOT.flushed); seen < id && Date.now() < until; seen = Atomics.load(this.ctrl, SLOT.flushed)) {
      Atomics.wait(this.ctrl, SLOT.flushed, seen, until - Date.now());
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.request("close"), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    this.closed = true;
    process.off("exit", this.onExit);
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      w.removeAllListeners("exit");
      await w.terminate();
    }
    this.inline?.close();
  }

  // --- the main thread writing on itself, once the writer thread is gone -----------------------

  private inlineQueue: string[] = [];

  private threadLost(err?: Error): void {
    if (this.inline || this.closed) return;
    // The thread ends itself once it has answered close(); that is no loss when it wrote everything.
    if (this.closing && !err && this.pending.length === 0 && this.posted === Atomics.load(this.ctrl, SLOT.processed)) return;
    this.worker = undefined;
    const unwritten = this.posted - Atomics.load(this.ctrl, SLOT.processed);
    this.inline = new FileWriter({ ...this.config, signer: this.signer, onStatus: this.onStatus });
    if (unwritten > 0) this.inline.dropped(unwritten, new Date().toISOString(), new Date().toISOString());
    this.onStatus(
      `skillbox: the security log writer thread stopped${err ? ` (${err.message})` : ""}; the host writes the log itself from now on${unwritten > 0 ? `, ${unwritten} event(s) it held are recorded as lost` : ""}`,
    );
    this.scheduleInline();
  }

  private scheduleInline(): void {
    if (this.inlineScheduled) return;
    this.inlineScheduled = true;
    setImmediate(() => {
      this.inlineScheduled = false;
      this.drainInline();
    });
  }

  private drainInline(checkpoint?: "close"): void {
    const lines = this.inlineQueue;
    this.inlineQueue = [];
    const until = Date.now() + 2000;
    while (!this.inline!.write(lines, checkpoint ? { checkpoint } : {})) {
      if (Date.now() > until) {
        this.inline!.dropped(lines.length, new Date().toISOString(), new Date().toISOString());
        break;
      }
    }
  }
}
