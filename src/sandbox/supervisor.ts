import { fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FromWorker, RunOutcome, SkillCode, ToWorker } from "./protocol.js";

const WORKER_PATH = fileURLToPath(new URL("./worker.js", import.meta.url));

export interface SupervisorOptions {
  /** worker processes; @default 2 */
  workers?: number;
  /** how long a worker may take to stop a cancelled attempt before it is killed; @default 250 */
  killGraceMs?: number;
  /** prepared isolates kept ready per skill and memory cap, and at most per worker; @default { perSkill: 2, max: 8 } */
  pool?: { perSkill?: number; max?: number };
}

export interface RunSpec {
  code: SkillCode;
  inputJson: string;
  envJson: string;
  memoryMb: number;
  timeoutMs: number;
  outputBytes: number;
  /** Called for each capability call; resolves to the JSON reply string for the isolate. */
  onCapability: (op: string, args: string) => Promise<string>;
}

export interface RunHandle {
  /** Settles once, with how the attempt ended. Never rejects. */
  result: Promise<{ outcome: RunOutcome; cpuMs: number }>;
  /** Stops the attempt: disposes its isolate; kills the worker if it does not answer within the grace. */
  cancel(): void;
}

interface Pending {
  spec: RunSpec;
  settle: (r: { outcome: RunOutcome; cpuMs: number }) => void;
  cancelled: boolean;
  killTimer?: NodeJS.Timeout;
}

class Worker {
  readonly child: ChildProcess;
  readonly inflight = new Map<number, Pending>();
  readonly loaded = new Set<string>();
  alive = true;
  readonly ready: Promise<void>;

  constructor(private readonly sup: Supervisor) {
    this.child = fork(WORKER_PATH, [], {
      execArgv: ["--no-node-snapshot"],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      // The worker needs nothing from the host's environment.
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NODE_ENV: "production", SKILLBOX_POOL: JSON.stringify(sup.pool) },
    });
    this.ready = new Promise((resolve) => {
      const onMsg = (m: FromWorker) => {
        if (m.t === "ready") {
          this.child.off("message", onMsg);
          this.idle();
          resolve();
        }
      };
      this.child.on("message", onMsg);
    });
    this.child.on("message", (m: FromWorker) => this.onMessage(m));
    this.child.on("exit", (code, signal) => this.onExit(code, signal));
    this.child.on("error", () => undefined);
  }

  send(msg: ToWorker): void {
    if (this.alive && this.child.connected) this.child.send(msg);
  }

  /** A worker keeps the host process alive only while it has attempts in flight. */
  busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  idle(): void {
    if (this.inflight.size > 0) return;
    this.child.unref();
    this.child.channel?.unref();
  }

  private onMessage(m: FromWorker): void {
    if (m.t === "done") {
      const p = this.inflight.get(m.id);
      if (!p) return;
      this.inflight.delete(m.id);
      this.idle();
      if (p.killTimer) clearTimeout(p.killTimer);
      p.settle({ outcome: p.cancelled ? { kind: "engine", reason: "cancelled", message: "cancelled" } : m.outcome, cpuMs: m.cpuMs });
      if (p.cancelled) this.sup.watchIdleCpu(this);
    } else if (m.t === "cap") {
      const p = this.inflight.get(m.id);
      if (!p || p.cancelled) return;
      p.spec.onCapability(m.op, m.args).then(
        (reply) => this.send({ t: "capResult", id: m.id, reqId: m.reqId, reply }),
        () => this.send({ t: "capResult", id: m.id, reqId: m.reqId, reply: JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: "capability failed", retryable: false } }) }),
      );
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.alive = false;
    this.sup.forget(this);
    for (const [id, p] of this.inflight) {
      this.inflight.delete(id);
      if (p.killTimer) clearTimeout(p.killTimer);
      p.settle({
        outcome: p.cancelled
          ? { kind: "engine", reason: "cancelled", message: "cancelled; its worker was stopped" }
          : { kind: "engine", reason: "internal", message: `the sandbox worker process ended (${signal ?? "exit code " + code}) while the skill ran` },
        cpuMs: 0,
      });
    }
  }

  kill(): void {
    if (this.alive) this.child.kill("SIGKILL");
  }
}

/**
 * Runs attempts in a small pool of worker processes. The supervisor owns every deadline's
 * enforcement: it disposes a cancelled attempt's isolate and SIGKILLs (and replaces) a worker
 * that does not answer within the grace, or that keeps burning CPU while it has nothing to run.
 */
export class Supervisor {
  private workers: Worker[] = [];
  private nextId = 1;
  private closed = false;
  readonly size: number;
  readonly killGraceMs: number;
  readonly pool: { perSkill?: number; max?: number };
  /** workers killed so far (for tests and metrics) */
  kills = 0;

  constructor(options: SupervisorOptions = {}) {
    this.size = Math.max(1, options.workers ?? 2);
    this.killGraceMs = options.killGraceMs ?? 250;
    this.pool = options.pool ?? {};
  }

  /** Starts the workers ahead of the first call. */
  async warm(): Promise<void> {
    while (this.workers.length < this.size) this.workers.push(new Worker(this));
    await Promise.all(this.workers.map((w) => w.ready));
  }

  private pick(): Worker {
    if (this.closed) throw new Error("the supervisor is closed");
    while (this.workers.length < this.size) this.workers.push(new Worker(this));
    let best = this.workers[0]!;
    for (const w of this.workers) if (w.inflight.size < best.inflight.size) best = w;
    return best;
  }

  run(spec: RunSpec): RunHandle {
    const worker = this.pick();
    const id = this.nextId++;
    let pending!: Pending;
    const result = new Promise<{ outcome: RunOutcome; cpuMs: number }>((resolve) => {
      pending = { spec, cancelled: false, settle: resolve };
    });
    worker.inflight.set(id, pending);
    worker.busy();
    if (!worker.loaded.has(spec.code.key)) {
      worker.send({ t: "load", code: spec.code });
      worker.loaded.add(spec.code.key);
    }
    worker.send({ t: "run", id, key: spec.code.key, inputJson: spec.inputJson, envJson: spec.envJson, memoryMb: spec.memoryMb, timeoutMs: spec.timeoutMs, outputBytes: spec.outputBytes });
    const cancel = () => {
      if (pending.cancelled || !worker.inflight.has(id)) return;
      pending.cancelled = true;
      worker.send({ t: "cancel", id });
      pending.killTimer = setTimeout(() => {
        if (worker.inflight.has(id)) {
          this.kills++;
          worker.kill();
        }
      }, this.killGraceMs);
      pending.killTimer.unref();
    };
    return { result, cancel };
  }

  /** @internal called by a worker that exited */
  forget(w: Worker): void {
    this.workers = this.workers.filter((x) => x !== w);
    if (!this.closed && this.workers.length < this.size) {
      // Replace it right away so the next call does not pay for the start.
      const fresh = new Worker(this);
      this.workers.push(fresh);
    }
  }

  /**
   * After a cancelled attempt: an isolate thread that ignores disposal keeps the worker's CPU
   * busy. If the worker has nothing in flight yet burns more than half a core, kill it.
   */
  watchIdleCpu(w: Worker): void {
    const pid = w.child.pid;
    if (pid === undefined || process.platform !== "linux") return;
    const before = cpuTicks(pid);
    const t = setTimeout(() => {
      if (!w.alive || w.inflight.size > 0) return;
      const after = cpuTicks(pid);
      if (before !== undefined && after !== undefined && after - before > 0.5 * 50) {
        this.kills++;
        w.kill();
      }
    }, 500);
    t.unref();
  }

  /** Worker process ids and how many workers were killed so far. */
  stats(): { workerPids: number[]; kills: number; inflight: number } {
    return {
      workerPids: this.workers.map((w) => w.child.pid).filter((p): p is number => p !== undefined),
      kills: this.kills,
      inflight: this.workers.reduce((n, w) => n + w.inflight.size, 0),
    };
  }

  /** Kills every worker; calls still in flight end as cancelled. */
  async close(): Promise<void> {
    this.closed = true;
    const exits = this.workers.map((w) => new Promise<void>((resolve) => (w.alive ? w.child.once("exit", () => resolve()) : resolve())));
    for (const w of this.workers) {
      w.busy(); // wait for its exit before close() resolves
      w.kill();
    }
    await Promise.all(exits);
    this.workers = [];
  }
}

/** utime+stime of a process in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}
