/**
 * A sandbox worker process. It owns isolates and nothing else: it never touches files,
 * network or processes for a skill. Every capability call is forwarded to the supervisor,
 * which checks and performs it. Started by the supervisor with --no-node-snapshot.
 *
 * Isolates are single-use. To keep their creation off the call's path, the worker prepares
 * some ahead, per skill and memory cap: a fresh isolate with its context, the prelude run and
 * the skill's modules compiled and linked (not evaluated). A call takes one that nobody used;
 * after the call it is disposed, and a new one is prepared in the background.
 */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import ivm from "isolated-vm";
import { intrinsic } from "./intrinsics.js";
import type { FromWorker, RunOutcome, RunRequest, SkillCode, ToWorker } from "./protocol.js";

const PRELUDE_SOURCE = readFileSync(new URL("../../../sandbox/prelude.js", import.meta.url), "utf8");
const POOL = { perSkill: 2, max: 8, ...(JSON.parse(process.env["SKILLBOX_POOL"] ?? "{}") as { perSkill?: number; max?: number }) };

type Code = SkillCode & { fileMap: Map<string, string> };
const skills = new Map<string, Code>();

/** One attempt in progress: what cancel and capability replies need. */
interface Active {
  isolate: ivm.Isolate;
  cancelled: boolean;
  pending: Map<number, (reply: string) => void>;
}
const active = new Map<number, Active>();
let nextReq = 1;

/** An isolate made ready for one attempt of one skill. */
interface Prepared {
  isolate: ivm.Isolate;
  invoke: ivm.Reference;
  /** the entry's default export, or how loading the modules failed (reported when the attempt runs) */
  main: ivm.Reference | { failed: RunOutcome };
  /** set when an attempt takes this isolate; capability calls before that are refused */
  holder: { state: Active | undefined };
}

/** Prepared isolates by `${skill key}|${memoryMb}`; each promise is one isolate, used once. */
const pool = new Map<string, Promise<Prepared>[]>();
let pooled = 0;

function sendToHost(msg: FromWorker): void {
  if (process.connected) process.send!(msg);
}

process.on("message", (msg: ToWorker) => {
  switch (msg.t) {
    case "load":
      skills.set(msg.code.key, { ...msg.code, fileMap: new Map(msg.code.files) });
      break;
    case "run":
      void run(msg);
      break;
    case "cancel": {
      const a = active.get(msg.id);
      if (a) {
        a.cancelled = true;
        disposeQuietly(a.isolate);
      }
      break;
    }
    case "capResult": {
      const a = active.get(msg.id);
      const resolve = a?.pending.get(msg.reqId);
      if (resolve) {
        a!.pending.delete(msg.reqId);
        resolve(msg.reply);
      }
      break;
    }
  }
});
// The supervisor is gone: nothing may outlive it.
process.on("disconnect", () => process.exit(0));
// A stray rejection from a disposed isolate must never take the worker (and its other calls) down.
process.on("unhandledRejection", () => undefined);

function disposeQuietly(isolate: ivm.Isolate): void {
  try {
    if (!isolate.isDisposed) isolate.dispose();
  } catch {
    /* already disposed */
  }
}

/** Resolves a relative import against the importing module; only files of the skill's own folder. */
function resolveSpecifier(specifier: string, referrer: string, files: Map<string, string>): string {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
    throw new Error(`import "${specifier}" refused: a skill may import only relative modules inside its own folder (no packages, no node: built-ins)`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(referrer), specifier));
  if (resolved.startsWith("../") || resolved === ".." || posix.isAbsolute(resolved) || !files.has(resolved)) {
    throw new Error(`import "${specifier}" from ${referrer} refused: no such module inside the skill folder`);
  }
  return resolved;
}

/** V8 code cache for the prelude, produced by the first compile and reused by every isolate after it. */
let preludeCachedData: ivm.ExternalCopy<ArrayBuffer> | undefined;
function preludeCache(): { cachedData: ivm.ExternalCopy<ArrayBuffer> } | { produceCachedData: true } {
  return preludeCachedData ? { cachedData: preludeCachedData } : { produceCachedData: true };
}

const INVALID_CALL = JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: "invalid capability call", retryable: false } });

/**
 * Builds a fresh isolate for one attempt: context, prelude, the skill's modules compiled,
 * linked and evaluated. Module top-level code runs here, with no input and no ctx, under the
 * attempt's timeout; a prepare that does not finish by then is disposed.
 */
async function prepare(code: Code, memoryMb: number, timeoutMs: number): Promise<Prepared> {
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  try {
    const context = await isolate.createContext();

    // The isolate gets one plain function that sends a request and returns nothing; replies
    // are delivered by calling the prelude's `deliver` from here. No Reference enters the isolate.
    const holder: Prepared["holder"] = { state: undefined };
    let deliver: ivm.Reference | undefined;
    const send = new ivm.Callback(
      (reqId: unknown, op: unknown, args: unknown) => {
        const state = holder.state;
        const reply = (text: string) => {
          if (state && !state.cancelled && deliver) deliver.apply(undefined, [reqId, text], { arguments: { copy: true } }).catch(() => undefined);
        };
        if (!state || state.cancelled || typeof reqId !== "number" || typeof op !== "string" || typeof args !== "string") {
          reply(INVALID_CALL);
          return;
        }
        const hostReq = nextReq++;
        state.pending.set(hostReq, reply);
        sendToHost({ t: "cap", id: runIdOf(state), reqId: hostReq, op, args });
      },
      { ignored: true },
    );
    // Only our own prelude runs here, so the synchronous calls are short and bounded; they save
    // a thread hop each. Skill code below is compiled, linked and run asynchronously.
    // The References below (prelude function, its invoke/deliver, the module's default export)
    // are held by this worker only and never passed into the isolate; the one derefInto() hands
    // the skill's own function back to its own isolate. The isolate holds nothing of ours but
    // `send`, an ignored-result Callback whose arguments are type-checked above.
    const preludeScript = isolate.compileScriptSync(PRELUDE_SOURCE, { filename: "skillbox:prelude.js", ...preludeCache() });
    const produced = (preludeScript as ivm.Script & ivm.CachedDataResult).cachedData;
    if (!preludeCachedData && produced) preludeCachedData = produced;
    const preludeFn = preludeScript.runSync(context, { reference: true, timeout: 1000 }) as ivm.Reference;
    // `intrinsic`: random bytes and URL parsing for the prelude's web globals (strings only).
    const helpers = new ivm.Callback(intrinsic, { sync: true });
    const api = preludeFn.applySync(undefined, [send, helpers], { result: { reference: true }, timeout: 1000 }) as ivm.Reference<{ invoke: unknown; deliver: unknown }>;
    preludeFn.release();
    const invoke = api.getSync("invoke", { reference: true });
    deliver = api.getSync("deliver", { reference: true });

    const modules = new Map<string, ivm.Module>();
    const paths = new Map<ivm.Module, string>();
    const compile = async (path: string): Promise<ivm.Module> => {
      let m = modules.get(path);
      if (!m) {
        m = await isolate.compileModule(code.fileMap.get(path)!, { filename: `skill:///${code.name}/${path}` });
        modules.set(path, m);
        paths.set(m, path);
      }
      return m;
    };
    let entry: ivm.Module;
    try {
      entry = await compile(code.entry);
      await entry.instantiate(context, async (specifier, referrer) => compile(resolveSpecifier(specifier, paths.get(referrer) ?? code.entry, code.fileMap)));
    } catch (err) {
      if (isolate.isDisposed) throw err;
      return { isolate, invoke, main: { failed: { kind: "engine", reason: "compile", message: firstLine(err) } }, holder };
    }
    // Top-level code: the sync part is bounded by isolated-vm's timeout, the rest by this deadline.
    const deadline = setTimeout(() => disposeQuietly(isolate), timeoutMs + 50);
    try {
      await entry.evaluate({ timeout: timeoutMs, promise: true });
      const main = await entry.namespace.get("default", { reference: true });
      return { isolate, invoke, main, holder };
    } catch (err) {
      return { isolate, invoke, main: { failed: engineOutcome(err, undefined) }, holder };
    } finally {
      clearTimeout(deadline);
    }
  } catch (err) {
    disposeQuietly(isolate);
    throw err;
  }
}

const runIds = new WeakMap<Active, number>();
function runIdOf(state: Active): number {
  return runIds.get(state) ?? -1;
}

/** Takes a prepared isolate for this skill, cap and timeout if one is waiting, else prepares one now. */
function take(code: Code, memoryMb: number, timeoutMs: number): Promise<Prepared> {
  const key = `${code.key}|${memoryMb}|${timeoutMs}`;
  const ready = pool.get(key);
  const p = ready?.shift();
  if (p) {
    pooled--;
    return p;
  }
  return prepare(code, memoryMb, timeoutMs);
}

/** Tops up the pool for this skill, cap and timeout, within the worker's bound, off the call's path. */
function refill(code: Code, memoryMb: number, timeoutMs: number): void {
  if (POOL.perSkill <= 0) return;
  const key = `${code.key}|${memoryMb}|${timeoutMs}`;
  let list = pool.get(key);
  if (!list) {
    list = [];
    pool.set(key, list);
  }
  while (list.length < POOL.perSkill) {
    if (pooled >= POOL.max && !evictOther(key)) return;
    const p = prepare(code, memoryMb, timeoutMs);
    p.catch(() => undefined);
    list.push(p);
    pooled++;
  }
}

/** Frees a place held for another skill (the oldest key first). */
function evictOther(keep: string): boolean {
  for (const [key, list] of pool) {
    if (key === keep || list.length === 0) continue;
    const p = list.shift()!;
    pooled--;
    void p.then((prep) => disposeQuietly(prep.isolate), () => undefined);
    if (list.length === 0) pool.delete(key);
    return true;
  }
  return false;
}

async function run(req: RunRequest): Promise<void> {
  const code = skills.get(req.key);
  let outcome: RunOutcome;
  let cpuMs = 0;
  let prepared: Prepared | undefined;
  const state: Active = { isolate: undefined as unknown as ivm.Isolate, cancelled: false, pending: new Map() };
  runIds.set(state, req.id);
  try {
    if (!code) throw Object.assign(new Error(`skill code ${req.key} was not loaded`), { reason: "internal" });
    active.set(req.id, state);
    prepared = await take(code, req.memoryMb, req.timeoutMs);
    state.isolate = prepared.isolate;
    if (state.cancelled) disposeQuietly(prepared.isolate);
    prepared.holder.state = state;
    outcome = await execute(prepared, state, req);
    if (state.cancelled && outcome.kind !== "ok") outcome = { kind: "engine", reason: "cancelled", message: "cancelled by the supervisor" };
  } catch (err) {
    outcome = engineOutcome(err, state);
  } finally {
    if (prepared) {
      try {
        cpuMs = prepared.isolate.isDisposed ? 0 : Number(prepared.isolate.cpuTime) / 1e6;
      } catch {
        cpuMs = 0;
      }
    }
    // Release any capability call still waiting: the isolate is finished.
    state.pending.clear();
    active.delete(req.id);
  }
  sendToHost({ t: "done", id: req.id, outcome, cpuMs });
  // Off the call's path: dispose the used isolate, prepare the next one.
  if (prepared) disposeQuietly(prepared.isolate);
  if (code) setImmediate(() => refill(code, req.memoryMb, req.timeoutMs));
}

async function execute(p: Prepared, state: Active, req: RunRequest): Promise<RunOutcome> {
  if ("failed" in p.main) return p.main.failed;
  if (state.cancelled) return { kind: "engine", reason: "cancelled", message: "cancelled" };
  const replyText: unknown = await p.invoke.apply(undefined, [p.main.derefInto(), req.inputJson, req.envJson], {
    timeout: req.timeoutMs,
    arguments: { copy: true },
    result: { promise: true, copy: true },
  });
  if (typeof replyText !== "string") return { kind: "engine", reason: "internal", message: "the sandbox returned no result" };
  if (replyText.length > req.outputBytes + 1024) {
    return { kind: "engine", reason: "output-size", message: `output is larger than outputBytes (${req.outputBytes})` };
  }
  const reply = JSON.parse(replyText) as { ok: true; json: string } | { ok: false; error: { name: string; message: string; retryable: boolean } };
  if (reply.ok) return { kind: "ok", json: reply.json };
  return { kind: "thrown", name: String(reply.error.name), message: String(reply.error.message), retryable: reply.error.retryable === true };
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0] ?? msg;
}

/** The one place engine failures (message strings in isolated-vm) become reasons. */
function engineOutcome(err: unknown, state: Active | undefined): RunOutcome {
  const message = firstLine(err);
  const reason = (err as { reason?: string })?.reason;
  if (reason === "internal") return { kind: "engine", reason: "internal", message };
  if (/memory limit/i.test(message)) return { kind: "engine", reason: "memory", message };
  if (state?.cancelled) return { kind: "engine", reason: "cancelled", message };
  if (/timed out/i.test(message)) return { kind: "engine", reason: "timeout", message };
  if (/disposed/i.test(message)) return { kind: "engine", reason: "memory", message };
  // A SyntaxError or a failed import at evaluation time.
  return { kind: "thrown", name: (err as Error)?.name ?? "Error", message, retryable: false };
}

sendToHost({ t: "ready", pid: process.pid });
