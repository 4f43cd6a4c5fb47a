/**
 * The security log's cost on a call's path (issue #18 item 1), self-contained:
 *   npm run build && node --no-node-snapshot dist/benchmarks/audit-log.js [calls]
 *
 * Each "call" logs 4 events (call.start, attempt.start, attempt.end, call.end) around a round trip
 * to a worker thread (standing in for the sandbox worker's reply), then waits 1 ms (paced calls)
 * or not (back-to-back). Measured: the round trip's latency — what a reply waiting behind the log
 * costs — and the main thread's event-loop utilization. Modes, interleaved call by call so load
 * hits all alike:
 *   off       no log (the floor)
 *   mkdir     the old sink: mkdir/rmdir lock, tail, stamp and write on the main thread per batch
 *   thread    the sink today: the main thread queues, the writer thread locks and writes
 */
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MessageChannel, Worker } from "node:worker_threads";
import { AuditLog } from "../src/audit/log.js";
import { FileWriter } from "../src/audit/file-writer.js";
import { stats } from "./lib.js";

const CALLS = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), "skillbox-bench-audit-"));

/** The old file sink's per-batch work, on the main thread: mkdir lock, write, rmdir. */
class MainThreadMkdirSink {
  private queue: string[] = [];
  private scheduled = false;
  private readonly writer: FileWriter;
  constructor(private readonly file: string) {
    // Its lock is taken by mkdir below, so the writer's own lock file is on another path.
    this.writer = new FileWriter({ file, onStatus: () => undefined, checkpointEveryLines: 1e9, checkpointEveryMs: 1e9 });
  }
  event(name: string, fields: Record<string, unknown>): void {
    this.queue.push(JSON.stringify({ time: new Date().toISOString(), level: "info", event: name, ...fields }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }
  private drain(): void {
    this.scheduled = false;
    const lock = `${this.file}.lock`;
    mkdirSync(lock);
    try {
      this.writer.write(this.queue.splice(0));
    } finally {
      rmdirSync(lock);
    }
  }
  close(): void {
    this.writer.close();
  }
}

const echo = new Worker("const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => m.port ? m.port.on('message', (x) => m.port.postMessage(x)) : 0);", { eval: true });
const { port1, port2 } = new MessageChannel();
echo.postMessage({ port: port2 }, [port2]);
const roundTrip = () =>
  new Promise<number>((resolve) => {
    const t0 = performance.now();
    port1.once("message", () => resolve(performance.now() - t0));
    port1.postMessage(1);
  });

type Mode = "off" | "mkdir" | "thread";
const threadLog = new AuditLog({ file: join(dir, "thread.jsonl"), onError: () => undefined });
const mkdirLog = new MainThreadMkdirSink(join(dir, "mkdir.jsonl"));
const log = (mode: Mode, name: string, fields: Record<string, unknown>) => {
  if (mode === "thread") threadLog.event(name, fields);
  else if (mode === "mkdir") mkdirLog.event(name, fields);
};

async function call(mode: Mode, i: number): Promise<number> {
  const base = { callId: `c${i}`, skill: "noop", caller: "bench", trust: "untrusted", session: null };
  log(mode, "call.start", base);
  log(mode, "attempt.start", { ...base, attempt: 1 });
  // Dispatched right after the events, as the host does: the log's batch is written while the
  // worker works, and a reply that arrives meanwhile waits for the main thread.
  const rt = await roundTrip();
  log(mode, "attempt.end", { ...base, attempt: 1, outcome: "ok" });
  log(mode, "call.end", { ...base, outcome: "ok", attempts: 1 });
  return rt;
}

const modes: Mode[] = ["off", "mkdir", "thread"];
for (const paced of [true, false]) {
  const samples: Record<Mode, number[]> = { off: [], mkdir: [], thread: [] };
  const elu: Record<Mode, number> = { off: 0, mkdir: 0, thread: 0 };
  for (let i = 0; i < CALLS; i++) {
    for (const mode of modes) {
      const before = performance.eventLoopUtilization();
      samples[mode].push(await call(mode, i));
      if (paced) await new Promise((r) => setTimeout(r, 1));
      else await new Promise((r) => setImmediate(r)); // the batch's drain runs here
      elu[mode] += performance.eventLoopUtilization(before).active;
    }
  }
  console.log(`\n${paced ? "paced (1 ms apart)" : "back-to-back"}, ${CALLS} calls per mode, interleaved`);
  console.log("mode     reply p50 ms  reply p99 ms  main-thread busy ms/call  ×floor p50  ×floor p99");
  const floor = stats(samples.off);
  for (const mode of modes) {
    const s = stats(samples[mode]);
    console.log(
      `${mode.padEnd(8)} ${s.p50.toFixed(3).padStart(12)}  ${s.p99.toFixed(3).padStart(12)}  ${(elu[mode] / CALLS).toFixed(3).padStart(24)}  ${(s.p50 / floor.p50).toFixed(2).padStart(10)}  ${(s.p99 / floor.p99).toFixed(2).padStart(10)}`,
    );
  }
}
await threadLog.close();
mkdirLog.close();
await echo.terminate();
rmSync(dir, { recursive: true, force: true });
