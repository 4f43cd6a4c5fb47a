/**
 * The audit writer thread: owns the log file for its host, so the lock, the tail read, the hash
 * chain and the disk write never run on the host's main thread, where sandbox replies arrive.
 */
import { parentPort, workerData } from "node:worker_threads";
import { FileWriter } from "./file-writer.js";
import { SLOT, signerOf, type FromWriter, type ToWriter, type WriterConfig } from "./writer-protocol.js";

/** Another process may hold the lock this long before the waiting lines are counted as lost. */
const LOCK_GIVE_UP_MS = 30_000;
/** While the file cannot be written, how often a pending log.gap is tried again. */
const RETRY_MS = 1000;

const { config, shared } = workerData as { config: WriterConfig; shared: SharedArrayBuffer };
const ctrl = new Int32Array(shared);
const port = parentPort!;
const send = (m: FromWriter) => port.postMessage(m);

const writer = new FileWriter({
  file: config.file,
  key: config.key,
  signer: signerOf(config),
  anchor: config.anchor,
  ...(config.checkpointEveryLines !== undefined ? { checkpointEveryLines: config.checkpointEveryLines } : {}),
  ...(config.checkpointEveryMs !== undefined ? { checkpointEveryMs: config.checkpointEveryMs } : {}),
  onStatus: (message) => send({ t: "status", message }),
});

let queue: string[] = [];
let flushId = 0;
let closeId = 0;
let scheduled = false;
let lockWaitSince = 0;
let retryTimer: NodeJS.Timeout | undefined;

function schedule(delayMs = 0): void {
  if (scheduled) return;
  scheduled = true;
  if (delayMs === 0) setImmediate(drain);
  else setTimeout(drain, delayMs);
}

function drain(): void {
  scheduled = false;
  const batch = queue;
  if (!writer.write(batch, closeId ? { checkpoint: "close" } : {})) {
    // Another process holds the lock: wait without blocking, up to a bound.
    lockWaitSince ||= Date.now();
    if (Date.now() - lockWaitSince < LOCK_GIVE_UP_MS) {
      schedule(Date.now() - lockWaitSince < 5 ? 0 : 1);
      return;
    }
    writer.dropped(batch.length, new Date(lockWaitSince).toISOString(), new Date().toISOString());
  }
  lockWaitSince = 0;
  queue = [];
  Atomics.store(ctrl, SLOT.lost, writer.lostTotal);
  Atomics.store(ctrl, SLOT.healthy, writer.healthy ? 1 : 0);
  Atomics.add(ctrl, SLOT.processed, batch.length);
  if (flushId > Atomics.load(ctrl, SLOT.flushed)) {
    Atomics.store(ctrl, SLOT.flushed, flushId);
    Atomics.notify(ctrl, SLOT.flushed);
    send({ t: "flushed", id: flushId });
  }
  if (closeId) {
    writer.close();
    clearTimeout(retryTimer);
    send({ t: "closed", id: closeId });
    port.close();
    return;
  }
  // A gap waits to be recorded: try again soon even if no new event comes.
  if (!writer.healthy && retryTimer === undefined) {
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      schedule();
    }, RETRY_MS);
  }
}

port.on("message", (m: ToWriter) => {
  if (m.t === "lines") {
    if (m.dropped) writer.dropped(m.dropped.count, m.dropped.from, m.dropped.to);
    for (const l of m.lines) queue.push(l);
  } else if (m.t === "flush") flushId = Math.max(flushId, m.id);
  else {
    flushId = Math.max(flushId, m.id);
    closeId = m.id;
  }
  schedule();
});
