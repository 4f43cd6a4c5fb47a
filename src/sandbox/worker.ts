/**
 * A sandbox worker process. It owns isolates and nothing else: it never touches files,
 * network or processes for a skill. Every capability call is forwarded to the supervisor,
 * which checks and performs it. Started by the supervisor with --no-node-snapshot.
 */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import ivm from "isolated-vm";
import type { FromWorker, RunOutcome, RunRequest, SkillCode, ToWorker } from "./protocol.js";

const PRELUDE_SOURCE = readFileSync(new URL("../../../sandbox/prelude.js", import.meta.url), "utf8");

const skills = new Map<string, SkillCode & { fileMap: Map<string, string> }>();
interface Active {
  isolate: ivm.Isolate;
  cancelled: boolean;
  pending: Map<number, (reply: string) => void>;
}
const active = new Map<number, Active>();
let nextReq = 1;

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

async function run(req: RunRequest): Promise<void> {
  const code = skills.get(req.key);
  let isolate: ivm.Isolate | undefined;
  let outcome: RunOutcome;
  let cpuMs = 0;
  try {
    if (!code) throw Object.assign(new Error(`skill code ${req.key} was not loaded`), { reason: "internal" });
    isolate = new ivm.Isolate({ memoryLimit: req.memoryMb });
    const state: Active = { isolate, cancelled: false, pending: new Map() };
    active.set(req.id, state);
    outcome = await runInIsolate(isolate, state, code, req);
    if (state.cancelled && outcome.kind !== "ok") outcome = { kind: "engine", reason: "cancelled", message: "cancelled by the supervisor" };
  } catch (err) {
    outcome = engineOutcome(err, active.get(req.id));
  } finally {
    if (isolate) {
      try {
        cpuMs = isolate.isDisposed ? 0 : Number(isolate.cpuTime) / 1e6;
      } catch {
        cpuMs = 0;
      }
      disposeQuietly(isolate);
    }
    const st = active.get(req.id);
    // Release any capability call still waiting: the isolate is gone.
    st?.pending.clear();
    active.delete(req.id);
  }
  sendToHost({ t: "done", id: req.id, outcome, cpuMs });
}

async function runInIsolate(isolate: ivm.Isolate, state: Active, code: SkillCode & { fileMap: Map<string, string> }, req: RunRequest): Promise<RunOutcome> {
  const context = await isolate.createContext();
  const global = context.global;
  // Nothing that compiles native code or reaches outside: no WebAssembly, no SharedArrayBuffer tricks.
  await global.delete("WebAssembly");
  await global.delete("SharedArrayBuffer");
  await global.delete("Atomics");

  // The isolate gets one plain function that sends a request and returns nothing; replies
  // are delivered by calling the prelude's `deliver` from here. No Reference enters the isolate.
  let deliver: ivm.Reference | undefined;
  const send = new ivm.Callback(
    (reqId: unknown, op: unknown, args: unknown) => {
      const reply = (text: string) => {
        if (!state.cancelled && deliver) deliver.apply(undefined, [reqId, text], { arguments: { copy: true } }).catch(() => undefined);
      };
      if (state.cancelled || typeof reqId !== "number" || typeof op !== "string" || typeof args !== "string") {
        reply(JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: "invalid capability call", retryable: false } }));
        return;
      }
      const hostReq = nextReq++;
      state.pending.set(hostReq, reply);
      sendToHost({ t: "cap", id: req.id, reqId: hostReq, op, args });
    },
    { ignored: true },
  );

  const preludeScript = await isolate.compileScript(PRELUDE_SOURCE, { filename: "skillbox:prelude.js" });
  const preludeFn = await preludeScript.run(context, { reference: true, timeout: req.timeoutMs });
  const api = (await preludeFn.apply(undefined, [send], { result: { reference: true }, timeout: req.timeoutMs })) as ivm.Reference<{ invoke: unknown; deliver: unknown }>;
  preludeFn.release();
  const invoke = await api.get("invoke", { reference: true });
  deliver = await api.get("deliver", { reference: true });

  const modules = new Map<string, ivm.Module>();
  const compile = async (path: string): Promise<ivm.Module> => {
    let m = modules.get(path);
    if (!m) {
      m = await isolate.compileModule(code.fileMap.get(path)!, { filename: `skill:///${code.name}/${path}` });
      modules.set(path, m);
    }
    return m;
  };
  let entry: ivm.Module;
  try {
    entry = await compile(code.entry);
    await entry.instantiate(context, async (specifier, referrer) => {
      const from = [...modules.entries()].find(([, m]) => m === referrer)?.[0] ?? code.entry;
      return compile(resolveSpecifier(specifier, from, code.fileMap));
    });
  } catch (err) {
    if (isEngineStop(err, state)) throw err;
    return { kind: "engine", reason: "compile", message: firstLine(err) };
  }
  await entry.evaluate({ timeout: req.timeoutMs, promise: true });
  const main = await entry.namespace.get("default", { reference: true });
  const replyText: unknown = await invoke.apply(undefined, [main.derefInto(), req.inputJson, req.envJson], {
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

function isEngineStop(err: unknown, state: Active | undefined): boolean {
  const m = firstLine(err);
  return state?.cancelled === true || /disposed|memory limit|timed out/i.test(m);
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

// A stray rejection from a disposed isolate must never take the worker (and its other calls) down.
process.on("unhandledRejection", () => undefined);
