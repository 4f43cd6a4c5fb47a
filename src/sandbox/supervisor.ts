import { fork, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defaultWorkers } from "../config/defaults.js";
import { classifyWorkerExit } from "./outcome.js";
import { poolKey, type FromWorker, type RunOutcome, type SkillCode, type ToWorker } from "./protocol.js";

const WORKER_PATH = fileURLToPath(new URL("./worker/main.js", import.meta.url));
/** how much of a worker's stderr is kept to tell V8's fatal OOM from other deaths */
const STDERR_TAIL_BYTES = 4096;

export interface SupervisorOptions {
  /** attempts running at once, one per worker process (one more is kept spare); @default max(2, cores) */
  workers?: number;
  /** how long a worker may take to stop a cancelled or timed-out attempt before it is killed; @default 250 */
  killGraceMs?: number;
  /** prepared isolates kept ready per skill and memory cap, and at most per worker; @default { perSkill: 2, max: 8 } */
  pool?: { perSkill?: number; max?: number };
  /** a worker is replaced (while idle, off any call's path) after this many attempts; @default 2000 */
  recycleAfterAttempts?: number;
  /** ...or once its resident memory passes this; @default 384 */
  recycleRssMb?: number;
  /**
   * How a worker process is started: the command line (e.g. bubblewrap's) that runs the worker
   * script with `node`. Given the node binary and its arguments, returns the program and its
   * arguments. @default runs node directly
   */
  wrap?: (node: string, args: string[]) => { command: string; args: string[] };
  /** the worker script (tests use one that cannot start); @default the built worker */
  workerPath?: string;
  /** consecutive workers dying before they are ready after which the supervisor gives up; @default 5 */
  maxStartFailures?: number;
  /** wait before restarting after the first failed start, doubling each time up to restartMaxMs; @default 100 */
  restartFirstMs?: number;
  /** @default 5000 */
  restartMaxMs?: number;
  /** told once when workers cannot start */
  onWarning?: (message: string) => void;
}

export interface RunSpec {
  code: SkillCode;
  inputJson: string;
  envJson: string;
  memoryMb: number;
  /** the attempt's wall clock, counted from the moment a worker takes it (queueing excluded) */
  timeoutMs: number;
  outputBytes: number;
  /** Called for each capability call; resolves to the JSON reply string for the isolate. */
  onCapability: (op: string, args: string) => Promise<string>;
  /** aborting it ends the attempt at once as `cancelled` */
  signal?: AbortSignal;
  /** called when a worker takes the attempt: its deadline starts now */
  onStart?: () => void;
}

export interface RunResult {
  outcome: RunOutcome;
  cpuMs: number;
}

export interface RunHandle {
  /** Settles once, with how the attempt ended. Never rejects. */
  result: Promise<RunResult>;
  /** Ends the attempt now as `cancelled`; its worker is killed if it does not confirm within the grace. */
  cancel(): void;
}

/** One attempt: queued, then on exactly one worker, then settled (once). */
interface Attempt {
  id: number;
  spec: RunSpec;
  key: string;
  worker: WorkerProcess | undefined;
  settled: boolean;
  resolve: (r: RunResult) => void;
  deadline: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * One worker process. It runs at most one attempt at a time. Whether it keeps the host process
 * alive is computed from its state in one place (`refresh`), so no late message can un-ref a
 * worker something still waits on.
 */
class WorkerProcess {
  readonly child: ChildProcess;
  /** the node process's id once ready (under bwrap: the wrapper's descendant) */
  private nodePid: number | undefined;
  alive = true;
  started = false;
  /** the attempt it runs, until its `done` arrives (even after the attempt was settled) */
  current: Attempt | undefined;
  /** the attempt on it was settled early (cancel, deadline): waiting for its confirmation */
  draining = false;
  /** being stopped on purpose (recycle, close): never given work again */
  stopping = false;
  /** close() waits for its exit: keeps the host alive until then */
  awaited = false;
  attemptsRun = 0;
  rssBytes = 0;
  lastUsed = 0;
  readonly loaded = new Set<string>();
  readyKeys = new Set<string>();
  stderrTail = "";
  readonly exited: Promise<void>;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(private readonly sup: Supervisor) {
    const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NODE_ENV: "production", SKILLBOX_POOL: JSON.stringify(sup.pool) };
    const nodeArgs = ["--no-node-snapshot", sup.workerPath];
    const common = {
      serialization: "advanced" as const,
      stdio: ["ignore", "ignore", "pipe", "ipc"] as ("ignore" | "pipe" | "ipc")[],
      // The worker needs nothing from the host's environment.
      env,
      // Its own process group: a terminal's Ctrl-C reaches the host only, and the host decides.
      detached: true,
    };
    if (sup.wrap) {
      const { command, args } = sup.wrap(process.execPath, nodeArgs);
      this.child = spawn(command, args, common);
    } else {
      this.child = fork(sup.workerPath, [], { ...common, execArgv: ["--no-node-snapshot"] });
    }
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
    });
    this.child.on("message", (m: FromWorker) => this.onMessage(m));
    this.child.on("exit", (code, signal) => this.onExit(code, signal));
    this.child.on("error", () => undefined);
    this.refresh();
  }

  /** The worker's node process (before it is ready, under a wrapper: the deepest process so far). */
  get pid(): number | undefined {
    if (this.nodePid !== undefined || this.child.pid === undefined) return this.nodePid ?? this.child.pid;
    return this.sup.wrap ? leafPid(this.child.pid) : this.child.pid;
  }

  /** Free to take an attempt now. */
  get idle(): boolean {
    return this.alive && this.started && !this.current && !this.stopping;
  }

  send(msg: ToWorker): void {
    if (this.alive && this.child.connected) this.child.send(msg);
  }

  /** The host process stays alive for this worker only while a caller waits on it or close() does. */
  refresh(): void {
    const needed = this.awaited || (this.current !== undefined && !this.current.settled) || (!this.started && this.sup.waitsForStart);
    const handles = [this.child, this.child.channel, this.child.stderr] as ({ ref(): void; unref(): void } | null | undefined)[];
    for (const h of handles) {
      if (needed) h?.ref();
      else h?.unref();
    }
  }

  start(a: Attempt): void {
    this.current = a;
    this.draining = false;
    this.attemptsRun++;
    this.lastUsed = performance.now();
    this.readyKeys.delete(a.key);
    if (!this.loaded.has(a.spec.code.key)) {
      this.send({ t: "load", code: a.spec.code });
      this.loaded.add(a.spec.code.key);
    }
    const { spec } = a;
    this.send({ t: "run", id: a.id, key: spec.code.key, inputJson: spec.inputJson, envJson: spec.envJson, memoryMb: spec.memoryMb, timeoutMs: spec.timeoutMs, outputBytes: spec.outputBytes });
    this.refresh();
  }

  /** The attempt on it was settled early: ask the worker to stop it; kill the worker if it does not confirm. */
  stopAttempt(a: Attempt): void {
    if (this.current !== a) return;
    this.draining = true;
    this.send({ t: "cancel", id: a.id });
    this.killTimer = setTimeout(() => {
      if (this.current === a) this.kill();
    }, this.sup.killGraceMs);
    this.killTimer.unref();
    this.refresh();
  }

  kill(): void {
    if (!this.alive) return;
    this.sup.kills++;
    this.terminate();
  }

  /**
   * SIGKILLs the worker. Under bwrap the child is bwrap itself: its node is killed too (by pid),
   * since a bwrap killed while still setting up may not have armed --die-with-parent yet.
   */
  terminate(): void {
    const node = this.pid;
    this.child.kill("SIGKILL");
    if (this.sup.wrap && node !== undefined && node !== this.child.pid) {
      try {
        process.kill(node, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case "ready":
        this.started = true;
        if (this.child.pid !== undefined) this.nodePid = this.sup.wrap ? leafPid(this.child.pid) : this.child.pid;
        this.sup.started();
        this.refresh();
        this.sup.dispatch();
        break;
      case "pool":
        this.readyKeys = new Set(m.ready);
        break;
      case "cap": {
        const a = this.current;
        if (!a || a.id !== m.id || a.settled) return;
        a.spec.onCapability(m.op, m.args).then(
          (reply) => {
            if (this.current === a && !a.settled) this.send({ t: "capResult", id: m.id, reqId: m.reqId, reply });
          },
          () => this.send({ t: "capResult", id: m.id, reqId: m.reqId, reply: JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: "capability failed", retryable: false } }) }),
        );
        break;
      }
      case "done": {
        const a = this.current;
        if (!a || a.id !== m.id) return;
        clearTimeout(this.killTimer);
        const wasDraining = this.draining;
        this.current = undefined;
        this.draining = false;
        this.rssBytes = m.rssBytes;
        this.readyKeys = new Set(m.ready);
        this.sup.settle(a, { outcome: m.outcome, cpuMs: m.cpuMs });
        this.refresh();
        this.sup.afterAttempt(this, wasDraining);
        break;
      }
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.alive = false;
    // Let go of the pipes: a process left behind inside the wrapper (see terminate) then sees
    // its channel close and exits, and never keeps the host alive.
    this.child.stderr?.destroy();
    if (this.child.connected) this.child.disconnect();
    clearTimeout(this.killTimer);
    const a = this.current;
    this.current = undefined;
    if (a) this.sup.settle(a, { outcome: classifyWorkerExit(code, signal, this.stderrTail), cpuMs: 0 });
    this.refresh();
    if (!this.started && !this.stopping) this.sup.startFailed(this, code === null ? `signal ${signal}` : `exit code ${code}`);
    else this.sup.forget(this);
  }
}

/**
 * Runs attempts in worker processes, one attempt per worker at a time: the worker count bounds
 * the attempts running at once, and attempts beyond it wait here, in order. One more worker than
 * that is kept started, so a crash, kill or recycle never makes a call wait for a cold start.
 * The supervisor owns every attempt's deadline (counted from when a worker takes it): it settles
 * the attempt, asks the worker to stop, and SIGKILLs (and replaces) a worker that does not
 * confirm within the grace — which, with one attempt per worker, harms no other call.
 */
export class Supervisor {
  private workers: WorkerProcess[] = [];
  private readonly waiting: Attempt[] = [];
  private running = 0;
  private nextId = 1;
  private closed = false;
  readonly size: number;
  readonly killGraceMs: number;
  readonly pool: { perSkill?: number; max?: number };
  readonly recycleAfterAttempts: number;
  readonly recycleRssBytes: number;
  wrap: SupervisorOptions["wrap"];
  readonly workerPath: string;
  private readonly maxStartFailures: number;
  private readonly restartFirstMs: number;
  private readonly restartMaxMs: number;
  private readonly onWarning: (message: string) => void;
  /** workers that died before becoming ready, in a row */
  private startFailures = 0;
  /** set once workers failed to start maxStartFailures times in a row: why, for every attempt */
  private broken: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** worker processes started so far (tests bound restarts with it) */
  spawned = 0;
  /** workers killed so far (for tests and metrics) */
  kills = 0;
  /** workers replaced after their attempt or memory budget */
  recycled = 0;

  constructor(options: SupervisorOptions = {}) {
    this.size = Math.max(1, Math.floor(options.workers ?? defaultWorkers()));
    this.killGraceMs = options.killGraceMs ?? 250;
    this.pool = options.pool ?? {};
    this.recycleAfterAttempts = Math.max(1, options.recycleAfterAttempts ?? 2000);
    this.recycleRssBytes = (options.recycleRssMb ?? 384) * 1024 * 1024;
    this.wrap = options.wrap;
    this.workerPath = options.workerPath ?? WORKER_PATH;
    this.maxStartFailures = Math.max(1, options.maxStartFailures ?? 5);
    this.restartFirstMs = options.restartFirstMs ?? 100;
    this.restartMaxMs = options.restartMaxMs ?? 5000;
    this.onWarning = options.onWarning ?? (() => undefined);
  }

  /** Sets how workers started from now on are wrapped (bwrap confinement, chosen once bwrap was probed). */
  confine(wrap: SupervisorOptions["wrap"]): void {
    this.wrap = wrap;
  }

  /** @internal a worker became ready: starts work again after failures */
  started(): void {
    this.startFailures = 0;
    this.broken = undefined;
  }

  /**
   * @internal A worker died before it was ready (isolated-vm cannot load, a bad wrapper, ...).
   * It is restarted after an exponential back-off; after maxStartFailures in a row the supervisor
   * stops, fails every waiting attempt at once and warns once. A new call then tries one start
   * (at most one per restartMaxMs), so a fixed machine recovers without a restart loop.
   */
  startFailed(w: WorkerProcess, how: string): void {
    this.workers = this.workers.filter((x) => x !== w);
    if (this.closed) return;
    this.startFailures++;
    const last = w.stderrTail.trim().split("\n").at(-1)?.trim().slice(0, 300);
    const why = `the sandbox worker process could not start (${how}${last ? `: ${last}` : ""})`;
    if (this.startFailures >= this.maxStartFailures) {
      if (this.broken === undefined) this.onWarning(`skillbox: warning: ${why}; gave up after ${this.startFailures} failed starts in a row`);
      this.broken = why;
      for (const a of this.waiting.splice(0)) this.settle(a, { outcome: { kind: "engine", reason: "crash", message: why }, cpuMs: 0 });
      return;
    }
    this.scheduleRestart(Math.min(this.restartMaxMs, this.restartFirstMs * 2 ** (this.startFailures - 1)));
  }

  private scheduleRestart(delayMs: number): void {
    if (this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.topUp();
      for (const x of this.workers) x.refresh();
    }, delayMs);
    // Keeps the host alive only while a call waits for a worker.
    if (!this.waitsForStart) this.restartTimer.unref();
  }

  /** warm() calls in progress */
  private warming = 0;

  /** Someone waits for a worker to start (an attempt in the queue, or warm()). */
  get waitsForStart(): boolean {
    return this.waiting.length > 0 || this.warming > 0;
  }

  /** Starts the workers (and the spare) ahead of the first call. */
  async warm(): Promise<void> {
    this.warming++;
    this.topUp();
    for (const w of this.workers) w.refresh();
    try {
      await Promise.all(
        this.workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.started || !w.alive) return resolve();
              const onMsg = (m: FromWorker) => {
                if (m.t === "ready") done();
              };
              const done = () => {
                w.child.off("message", onMsg);
                w.child.off("exit", done);
                resolve();
              };
              w.child.on("message", onMsg);
              w.child.once("exit", done);
            }),
        ),
      );
    } finally {
      this.warming--;
      for (const w of this.workers) w.refresh();
    }
  }

  run(spec: RunSpec): RunHandle {
    let resolve!: (r: RunResult) => void;
    const result = new Promise<RunResult>((r) => (resolve = r));
    const a: Attempt = { id: this.nextId++, spec, key: poolKey(spec.code.key, spec.memoryMb), worker: undefined, settled: false, resolve, deadline: undefined, onAbort: undefined };
    const cancel = () => this.end(a, { kind: "engine", reason: "cancelled", message: "cancelled by its caller" });
    if (this.closed) {
      this.settle(a, { outcome: { kind: "engine", reason: "cancelled", message: "the sandbox is shutting down" }, cpuMs: 0 });
      return { result, cancel };
    }
    if (this.broken !== undefined) {
      this.settle(a, { outcome: { kind: "engine", reason: "crash", message: this.broken }, cpuMs: 0 });
      // One more try in the background, at most once per restartMaxMs.
      if (this.workers.length === 0) this.scheduleRestart(this.restartMaxMs);
      return { result, cancel };
    }
    if (spec.signal) {
      if (spec.signal.aborted) {
        this.settle(a, { outcome: { kind: "engine", reason: "cancelled", message: "cancelled by its caller" }, cpuMs: 0 });
        return { result, cancel };
      }
      a.onAbort = cancel;
      spec.signal.addEventListener("abort", cancel, { once: true });
    }
    this.waiting.push(a);
    this.restartTimer?.ref();
    this.topUp();
    this.dispatch();
    for (const w of this.workers) w.refresh();
    return { result, cancel };
  }

  /** Gives waiting attempts to idle workers, up to `size` running at once. */
  dispatch(): void {
    while (this.waiting.length > 0 && this.running < this.size) {
      const a = this.waiting[0]!;
      const w = this.pick(a.key);
      if (!w) break;
      this.waiting.shift();
      this.running++;
      a.worker = w;
      a.spec.onStart?.();
      w.start(a);
      a.deadline = setTimeout(() => this.end(a, { kind: "engine", reason: "timeout", message: `did not finish within ${a.spec.timeoutMs} ms` }), a.spec.timeoutMs);
    }
    if (this.waiting.length === 0) for (const w of this.workers) if (!w.started) w.refresh();
  }

  /** An idle worker: one holding a prepared isolate for this key first, else the least recently used. */
  private pick(key: string): WorkerProcess | undefined {
    let best: WorkerProcess | undefined;
    for (const w of this.workers) {
      if (!w.idle) continue;
      if (w.readyKeys.has(key)) return w;
      if (!best || w.lastUsed < best.lastUsed) best = w;
    }
    return best;
  }

  /** Settles an attempt early (cancel, deadline) and stops it on its worker. */
  private end(a: Attempt, outcome: RunOutcome): void {
    if (a.settled) return;
    const i = this.waiting.indexOf(a);
    if (i >= 0) this.waiting.splice(i, 1);
    this.settle(a, { outcome, cpuMs: 0 });
    a.worker?.stopAttempt(a);
  }

  /** @internal Settles an attempt once and frees its running slot at once. */
  settle(a: Attempt, r: RunResult): void {
    if (a.settled) return;
    a.settled = true;
    clearTimeout(a.deadline);
    if (a.onAbort) a.spec.signal?.removeEventListener("abort", a.onAbort);
    if (a.worker) this.running--;
    a.resolve(r);
    a.worker?.refresh();
    queueMicrotask(() => this.dispatch());
  }

  /** @internal A worker confirmed its attempt: recycle it if it is worn, watch it if it was stopped. */
  afterAttempt(w: WorkerProcess, wasStopped: boolean): void {
    if (this.closed) return;
    if (!this.spareWanted) {
      this.spareWanted = true;
      this.topUp();
    }
    if (w.attemptsRun >= this.recycleAfterAttempts || w.rssBytes > this.recycleRssBytes) {
      this.recycled++;
      this.retire(w);
    } else if (wasStopped) this.watchIdleCpu(w);
    this.dispatch();
  }

  /** Stops a worker on purpose; its replacement starts at once (the spare covers the gap). */
  private retire(w: WorkerProcess): void {
    w.stopping = true;
    this.workers = this.workers.filter((x) => x !== w);
    this.topUp();
    if (w.alive) w.terminate();
  }

  /**
   * Keeps `size` workers started or starting, and one spare once the first attempt has ended (so
   * a one-shot host, like `skillbox run`, does not pay for a spare it never uses, and the spare
   * never starts on the core serving the first call).
   */
  private topUp(): void {
    if (this.closed || this.restartTimer) return;
    // Gave up: one worker at a time tries to start (scheduled by a new call), not the whole pool.
    const want = this.broken !== undefined ? 1 : this.size + (this.spareWanted ? 1 : 0);
    while (this.workers.length < want) {
      this.spawned++;
      this.workers.push(new WorkerProcess(this));
    }
  }
  private spareWanted = false;

  /** @internal called by a worker that exited */
  forget(w: WorkerProcess): void {
    this.workers = this.workers.filter((x) => x !== w);
    this.spareWanted = true;
    this.topUp();
    this.dispatch();
  }

  /**
   * After a stopped attempt: an isolate thread that ignores disposal keeps the worker's CPU busy.
   * If the worker has nothing in flight yet burns more than half a core, kill it.
   */
  private watchIdleCpu(w: WorkerProcess): void {
    const pid = w.pid;
    if (pid === undefined || process.platform !== "linux") return;
    const before = cpuTicks(pid);
    const t = setTimeout(() => {
      if (!w.alive || w.current) return;
      const after = cpuTicks(pid);
      if (before !== undefined && after !== undefined && after - before > 0.5 * 50) w.kill();
    }, 500);
    t.unref();
  }

  /** Worker process ids, workers killed and recycled so far, attempts running and waiting. */
  stats(): { workerPids: number[]; busyPids: number[]; kills: number; recycled: number; inflight: number; queued: number; preparedKeys: string[] } {
    const pids = (ws: WorkerProcess[]) => ws.map((w) => w.pid).filter((p): p is number => p !== undefined);
    return {
      workerPids: pids(this.workers),
      busyPids: pids(this.workers.filter((w) => w.current !== undefined)),
      kills: this.kills,
      recycled: this.recycled,
      inflight: this.running,
      queued: this.waiting.length,
      preparedKeys: [...new Set(this.workers.flatMap((w) => [...w.readyKeys]))],
    };
  }

  /** Cancels every attempt (waiting or running) and kills every worker; resolves once they are gone. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    for (const a of [...this.waiting]) this.end(a, { kind: "engine", reason: "cancelled", message: "the sandbox is shutting down" });
    const workers = this.workers;
    this.workers = [];
    for (const w of workers) {
      if (w.current && !w.current.settled) this.settle(w.current, { outcome: { kind: "engine", reason: "cancelled", message: "the sandbox is shutting down" }, cpuMs: 0 });
      w.stopping = true;
      w.awaited = w.alive;
      w.refresh();
      if (w.alive) w.terminate();
    }
    await Promise.all(workers.map((w) => w.exited));
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

/** The deepest single descendant of a process (bwrap -> its namespace init -> node); the process itself if it has none. */
function leafPid(pid: number): number {
  let at = pid;
  for (let depth = 0; depth < 4; depth++) {
    try {
      const kids = readFileSync(`/proc/${at}/task/${at}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      if (kids.length !== 1) break;
      at = Number(kids[0]);
    } catch {
      break;
    }
  }
  return at;
}
