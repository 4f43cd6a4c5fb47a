/**
 * A sandbox worker process. It owns isolates and nothing else: it never touches files, network
 * or processes for a skill; every capability call is forwarded to the supervisor, which checks
 * and performs it. It runs one attempt at a time (the supervisor never sends a second `run`
 * before `done`), so a crash of this process ends exactly one attempt. Started by the supervisor
 * with --no-node-snapshot, in its own process group.
 */
import { classifyEngineError } from "../outcome.js";
import { poolKey, type FromWorker, type RunOutcome, type RunRequest, type ToWorker } from "../protocol.js";
import { PreparedIsolate, type Code } from "./isolate.js";
import { IsolatePool } from "./pool.js";
import { DEFAULTS } from "../../config/defaults.js";

const POOL = { ...DEFAULTS.pool, ...(JSON.parse(process.env["SKILLBOX_POOL"] ?? "{}") as { perSkill?: number; max?: number }) };

const skills = new Map<string, Code>();

/** The attempt in progress, if any: what cancel and capability replies need. */
interface Current {
  id: number;
  cancelled: boolean;
  isolate: PreparedIsolate | undefined;
  pending: Map<number, (reply: string) => void>;
}
let current: Current | undefined;
let nextReq = 1;

function sendToHost(msg: FromWorker): void {
  if (process.connected) process.send!(msg);
}

const pool = new IsolatePool(POOL.perSkill, POOL.max, () => sendToHost({ t: "pool", ready: pool.readyKeys() }));

process.on("message", (msg: ToWorker) => {
  switch (msg.t) {
    case "load":
      skills.set(msg.code.key, { ...msg.code, fileMap: new Map(msg.code.files) });
      break;
    case "run":
      void run(msg);
      break;
    case "cancel":
      if (current?.id === msg.id) {
        current.cancelled = true;
        current.isolate?.stop("cancel");
      }
      break;
    case "capResult": {
      const resolve = current?.id === msg.id ? current.pending.get(msg.reqId) : undefined;
      if (resolve) {
        current!.pending.delete(msg.reqId);
        resolve(msg.reply);
      }
      break;
    }
  }
});
// The supervisor is gone: nothing may outlive it.
process.on("disconnect", () => process.exit(0));
// A stray rejection from a disposed isolate must never take the worker down.
process.on("unhandledRejection", () => undefined);

async function run(req: RunRequest): Promise<void> {
  if (current) {
    sendToHost({
      t: "done",
      id: req.id,
      outcome: { kind: "engine", reason: "internal", message: "the worker was already running an attempt" },
      cpuMs: 0,
      rssBytes: process.memoryUsage.rss(),
      ready: pool.readyKeys(),
    });
    return;
  }
  const me: Current = { id: req.id, cancelled: false, isolate: undefined, pending: new Map() };
  current = me;
  const code = skills.get(req.key);
  const key = poolKey(req.key, req.memoryMb);
  let outcome: RunOutcome;
  let hit = false;
  try {
    if (!code) throw new Error(`skill code ${req.key} was not loaded`);
    const pooled = pool.take(key);
    hit = pooled !== undefined;
    me.isolate = await (pooled ?? PreparedIsolate.create(code, req.memoryMb, key));
    if (me.cancelled) outcome = { kind: "engine", reason: "cancelled", message: "cancelled before it started" };
    else
      outcome = await me.isolate.run(req, {
        capability: (op, args, reply) => {
          const reqId = nextReq++;
          me.pending.set(reqId, reply);
          sendToHost({ t: "cap", id: req.id, reqId, op, args });
        },
      });
  } catch (err) {
    outcome = me.cancelled ? { kind: "engine", reason: "cancelled", message: "cancelled" } : classifyEngineError(err, undefined);
    if (outcome.kind === "thrown") outcome = { kind: "engine", reason: "internal", message: outcome.message };
  }
  const cpuMs = me.isolate?.cpuMs ?? 0;
  me.isolate?.dispose();
  me.pending.clear();
  current = undefined;
  sendToHost({ t: "done", id: req.id, outcome, cpuMs, rssBytes: process.memoryUsage.rss(), ready: pool.readyKeys() });
  // Off the call's path: prepare the next isolate for this skill.
  if (code) setImmediate(() => pool.refill(code, req.memoryMb, key, hit));
}

sendToHost({ t: "ready", pid: process.pid });
