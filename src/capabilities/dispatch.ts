import { performance } from "node:perf_hooks";
import { CapabilityFailure, PermissionDenied } from "./errors.js";
import * as fs from "./fs.js";
import type { FsScope } from "./fs.js";
import { fetchCapability, type NetScope } from "./net.js";
import { execCapability, type ExecScope } from "./process.js";

export interface CapabilityScope extends FsScope, NetScope, ExecScope {
  /** a ctx.log line from the skill */
  log(level: string, message: string, fields: unknown): void;
  /** called once when an access is refused: the attempt ends with E_PERMISSION_DENIED */
  denied(err: PermissionDenied): void;
}

/** Capability requests one attempt may have outstanding at once; more are refused at once, without I/O. */
export const MAX_OUTSTANDING_REQUESTS = 16;
const outstanding = new WeakMap<CapabilityScope, number>();

type Reply = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; retryable: boolean } };

/**
 * Performs one capability call from a skill: validates the arguments (they come from the
 * sandbox and are never trusted), checks the grant, acts, and answers with a JSON string.
 */
export async function dispatch(scope: CapabilityScope, op: string, argsJson: string): Promise<string> {
  let reply: Reply;
  if (op === "log") {
    // Synchronous and without I/O, bounded by the call's log budget instead: fire-and-forget
    // lines must not use up (or be refused by) the cap on outstanding requests.
    try {
      return JSON.stringify({ ok: true, value: await perform(scope, op, parseArgs(argsJson)) } satisfies Reply);
    } catch (err) {
      return JSON.stringify({ ok: false, error: { code: "E_SKILL_ERROR", message: `log failed: ${(err as Error).message}`, retryable: false } } satisfies Reply);
    }
  }
  const inFlight = outstanding.get(scope) ?? 0;
  if (inFlight >= MAX_OUTSTANDING_REQUESTS) {
    return JSON.stringify({
      ok: false,
      error: { code: "E_SKILL_ERROR", message: `${op} refused: ${MAX_OUTSTANDING_REQUESTS} capability requests of this attempt are still in flight; await them first`, retryable: false },
    } satisfies Reply);
  }
  outstanding.set(scope, inFlight + 1);
  try {
    const args = parseArgs(argsJson);
    reply = { ok: true, value: await perform(scope, op, args) };
  } catch (err) {
    if (err instanceof PermissionDenied) {
      scope.denied(err);
      reply = { ok: false, error: { code: "E_PERMISSION_DENIED", message: err.message, retryable: false } };
    } else if (err instanceof CapabilityFailure) {
      reply = { ok: false, error: { code: "E_SKILL_ERROR", message: err.message, retryable: err.retryable } };
    } else {
      reply = { ok: false, error: { code: "E_SKILL_ERROR", message: `${op} failed: ${(err as Error).message}`, retryable: false } };
    }
  } finally {
    outstanding.set(scope, (outstanding.get(scope) ?? 1) - 1);
  }
  return JSON.stringify(reply);
}

function parseArgs(json: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new CapabilityFailure("malformed capability arguments");
  }
  if (!Array.isArray(v)) throw new CapabilityFailure("malformed capability arguments");
  return v;
}

async function perform(scope: CapabilityScope, op: string, args: unknown[]): Promise<unknown> {
  switch (op) {
    case "fs.readFile":
      return fs.readFile(scope, args[0]);
    case "fs.writeFile":
      return fs.writeFile(scope, args[0], args[1]);
    case "fs.list":
      return fs.list(scope, args[0]);
    case "fs.delete":
      return fs.remove(scope, args[0]);
    case "log": {
      scope.log(String(args[0]), String(args[1]).slice(0, 2000), args[2] ?? null);
      return null;
    }
    case "sleep":
      return sleep(scope, args[0]);
    case "fetch":
      return fetchCapability(scope, args[0], args[1]);
    case "exec":
      return execCapability(scope, args[0], args[1], args[2]);
    default:
      throw new CapabilityFailure(`unknown capability "${op}"`);
  }
}

/**
 * The prelude's setTimeout: answered after `ms`. A wait that reaches past the attempt's deadline
 * is answered only after it, so the attempt ends as E_TIMEOUT and the host holds no timer longer.
 */
function sleep(scope: CapabilityScope, ms: unknown): Promise<null> {
  const wanted = typeof ms === "number" && Number.isFinite(ms) && ms > 0 ? ms : 0;
  const left = Math.max(0, scope.deadline - performance.now());
  const waitMs = wanted < left ? wanted : left + 100;
  return new Promise((resolve) => setTimeout(() => resolve(null), waitMs).unref());
}
