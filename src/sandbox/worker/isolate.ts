import { readFileSync } from "node:fs";
import { posix } from "node:path";
import ivm from "isolated-vm";
import { intrinsic } from "../intrinsics.js";
import { classifyEngineError, firstLine } from "../outcome.js";
import type { RunOutcome, RunRequest, SkillCode } from "../protocol.js";

const PRELUDE_SOURCE = readFileSync(new URL("../../../../sandbox/prelude.js", import.meta.url), "utf8");
const INVALID_CALL = JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: "invalid capability call", retryable: false } });

/** A skill's sources as the worker keeps them. */
export type Code = SkillCode & { fileMap: Map<string, string> };

/** What an attempt needs from the worker around the isolate: the way out for capability calls. */
export interface AttemptHooks {
  /** forwards one capability call to the host; `reply` delivers the host's answer into the isolate */
  capability(op: string, args: string, reply: (text: string) => void): void;
}

/** V8 code cache for the prelude, produced by the first compile and reused by every isolate after it. */
let preludeCachedData: ivm.ExternalCopy<ArrayBuffer> | undefined;

/**
 * One isolate for one attempt of one skill, and the one owner of its lifecycle:
 * `create` (isolate, context, prelude, the skill's modules compiled and linked — no skill code
 * runs) → `run` (module top level evaluated, then the default export called, both under the
 * attempt's deadline) → `dispose` (the only place an isolate is disposed). Single use.
 */
export class PreparedIsolate {
  private attempt: { hooks: AttemptHooks; open: boolean } | undefined;
  /** why we disposed it, if we did: tells a cancel from a deadline from V8's own memory disposal */
  private disposedBy: "cancel" | "deadline" | undefined;
  private used = false;

  private constructor(
    private readonly isolate: ivm.Isolate,
    private readonly invoke: ivm.Reference,
    private readonly deliver: ivm.Reference,
    /** the linked entry module, or how compiling/linking failed (reported when an attempt runs) */
    private readonly entry: ivm.Module | { failed: RunOutcome },
    readonly key: string,
  ) {}

  static async create(code: Code, memoryMb: number, key: string): Promise<PreparedIsolate> {
    const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
    try {
      const context = await isolate.createContext();
      // The isolate gets one plain function that sends a request and returns nothing; replies are
      // delivered by calling the prelude's `deliver`. No Reference enters the isolate. `self` is
      // filled in below, before any skill code can run.
      let self: PreparedIsolate | undefined;
      const send = new ivm.Callback((reqId: unknown, op: unknown, args: unknown) => self?.onSend(reqId, op, args), { ignored: true });
      // Only our own prelude runs synchronously here, so these calls are short and bounded.
      // The References below are held by this worker only and never passed into the isolate.
      const preludeScript = isolate.compileScriptSync(PRELUDE_SOURCE, { filename: "skillbox:prelude.js", ...(preludeCachedData ? { cachedData: preludeCachedData } : { produceCachedData: true }) });
      const produced = (preludeScript as ivm.Script & ivm.CachedDataResult).cachedData;
      if (!preludeCachedData && produced) preludeCachedData = produced;
      const preludeFn = preludeScript.runSync(context, { reference: true, timeout: 1000 }) as ivm.Reference;
      // `intrinsic`: random bytes and URL parsing for the prelude's web globals (strings only).
      const helpers = new ivm.Callback(intrinsic, { sync: true });
      const api = preludeFn.applySync(undefined, [send, helpers], { result: { reference: true }, timeout: 1000 }) as ivm.Reference<{ invoke: unknown; deliver: unknown }>;
      preludeFn.release();
      const invoke = api.getSync("invoke", { reference: true });
      const deliver = api.getSync("deliver", { reference: true });
      api.release();
      const entry = await link(isolate, context, code);
      self = new PreparedIsolate(isolate, invoke, deliver, entry, key);
      return self;
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /**
   * Runs the attempt: evaluates the skill's module top level (first time any of its code runs),
   * then calls its default export. The caller bounds the whole by disposing on its deadline or
   * cancel (`stop`); isolated-vm bounds each synchronous stretch by `timeoutMs` itself.
   */
  async run(req: RunRequest, hooks: AttemptHooks): Promise<RunOutcome> {
    if (this.used) return { kind: "engine", reason: "internal", message: "a prepared isolate was offered twice" };
    this.used = true;
    if ("failed" in this.entry) return this.entry.failed;
    this.attempt = { hooks, open: true };
    try {
      const started = performance.now();
      await this.entry.evaluate({ timeout: req.timeoutMs, promise: true });
      const main = await this.entry.namespace.get("default", { reference: true });
      const leftMs = Math.max(1, Math.round(req.timeoutMs - (performance.now() - started)));
      const replyText: unknown = await this.invoke.apply(undefined, [main.derefInto(), req.inputJson, req.envJson], {
        timeout: leftMs,
        arguments: { copy: true },
        result: { promise: true, copy: true },
      });
      return decodeReply(replyText, req.outputBytes);
    } catch (err) {
      return classifyEngineError(err, this.disposedBy);
    } finally {
      this.attempt.open = false;
    }
  }

  /** Ends whatever runs in it now: the attempt settles as cancelled or timed out. */
  stop(why: "cancel" | "deadline"): void {
    this.disposedBy ??= why;
    this.dispose();
  }

  /** CPU the isolate used, in ms (0 once disposed). */
  get cpuMs(): number {
    try {
      return this.isolate.isDisposed ? 0 : Number(this.isolate.cpuTime) / 1e6;
    } catch {
      return 0;
    }
  }

  /** The one place an isolate is disposed. Safe to call more than once. */
  dispose(): void {
    if (this.attempt) this.attempt.open = false;
    try {
      if (!this.isolate.isDisposed) this.isolate.dispose();
    } catch {
      /* already disposed */
    }
  }

  private onSend(reqId: unknown, op: unknown, args: unknown): void {
    const attempt = this.attempt;
    const reply = (text: string) => {
      if (attempt?.open && !this.isolate.isDisposed) this.deliver.apply(undefined, [reqId, text], { arguments: { copy: true } }).catch(() => undefined);
    };
    if (!attempt?.open || typeof reqId !== "number" || typeof op !== "string" || typeof args !== "string") {
      reply(INVALID_CALL);
      return;
    }
    attempt.hooks.capability(op, args, reply);
  }
}

/** Compiles and links the skill's modules (no evaluation). A failure is kept for the attempt to report. */
async function link(isolate: ivm.Isolate, context: ivm.Context, code: Code): Promise<ivm.Module | { failed: RunOutcome }> {
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
  try {
    const entry = await compile(code.entry);
    await entry.instantiate(context, async (specifier, referrer) => compile(resolveSpecifier(specifier, paths.get(referrer) ?? code.entry, code.fileMap)));
    return entry;
  } catch (err) {
    if (isolate.isDisposed) throw err;
    return { failed: { kind: "engine", reason: "compile", message: firstLine(err) } };
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

/**
 * The prelude's reply: "o" + the output's JSON (encoded once, inside the isolate), or "e" + the
 * thrown value as JSON. The output cap applies to the real encoded bytes.
 */
function decodeReply(replyText: unknown, outputBytes: number): RunOutcome {
  if (typeof replyText !== "string" || replyText.length === 0) return { kind: "engine", reason: "internal", message: "the sandbox returned no result" };
  const body = replyText.slice(1);
  if (replyText[0] === "o") {
    // UTF-8 takes at least one byte per UTF-16 unit and at most three: measure only when it matters.
    const bytes = body.length * 3 <= outputBytes ? body.length : Buffer.byteLength(body);
    if (bytes > outputBytes) return { kind: "engine", reason: "output-size", message: `returned ${bytes} bytes of output, more than outputBytes (${outputBytes})` };
    return { kind: "ok", json: body };
  }
  const error = JSON.parse(body) as { name: unknown; message: unknown; retryable: unknown };
  return { kind: "thrown", name: String(error.name), message: String(error.message), retryable: error.retryable === true };
}
