import { SkillError } from "../errors.js";
import type { RunOutcome } from "./protocol.js";

/**
 * The one translation table of how an attempt ended inside the sandbox. isolated-vm and V8 report
 * memory overruns, timeouts and disposal only as message strings (or, for V8's fatal OOM, as the
 * worker process aborting): `classifyEngineError` and `classifyWorkerExit` turn those into reasons,
 * `translateOutcome` turns reasons into a result or a SkillError. Nothing else matches on these
 * strings.
 */

/** Why isolated-vm stopped the code, from the error it gave; `cancelled` when we disposed it on purpose. */
export function classifyEngineError(err: unknown, disposedBy: "cancel" | "deadline" | undefined): RunOutcome {
  const message = firstLine(err);
  if (/memory limit/i.test(message)) return { kind: "engine", reason: "memory", message };
  if (disposedBy === "cancel") return { kind: "engine", reason: "cancelled", message };
  if (disposedBy === "deadline" || /timed out/i.test(message)) return { kind: "engine", reason: "timeout", message };
  // isolated-vm disposes an isolate that passes its heap limit outside a synchronous call.
  if (/disposed/i.test(message)) return { kind: "engine", reason: "memory", message };
  // A SyntaxError or a failed import at evaluation time: the skill's own failure.
  return { kind: "thrown", name: errorName(err), message, retryable: false };
}

/**
 * How a worker process that died under an attempt ended it. V8's fatal out-of-memory aborts the
 * whole process (SIGABRT, "Fatal process out of memory" / "heap limit" on stderr): that is the
 * attempt's skill exhausting memory, not a transient fault.
 */
export function classifyWorkerExit(code: number | null, signal: NodeJS.Signals | null, stderrTail: string): RunOutcome {
  const how = signal ?? `exit code ${code}`;
  if (signal === "SIGABRT" || code === 134 || /out of memory|heap limit|allocation failed/i.test(stderrTail)) {
    return { kind: "engine", reason: "memory", message: `V8 ran out of memory and its worker process ended (${how})` };
  }
  return { kind: "engine", reason: "crash", message: `the sandbox worker process ended (${how}) while the skill ran` };
}

export interface OutcomeLimits {
  memoryMb: number;
  timeoutMs: number;
  outputBytes: number;
}

/** Resolves to the skill's output, or throws the SkillError the outcome stands for. */
export function translateOutcome(outcome: RunOutcome, limits: OutcomeLimits, skill: string): { output: unknown } {
  switch (outcome.kind) {
    case "ok":
      // The worker already held the encoded bytes against outputBytes.
      return { output: JSON.parse(outcome.json) as unknown };
    case "thrown":
      if (outcome.name === "OutputError") throw new SkillError("E_OUTPUT_INVALID", `${skill}: ${outcome.message}`);
      throw new SkillError("E_SKILL_ERROR", `${skill} threw ${outcome.name}: ${outcome.message}`, { retryable: outcome.retryable, details: { name: outcome.name } });
    case "engine":
      switch (outcome.reason) {
        case "memory":
          throw new SkillError("E_MEMORY_LIMIT", `${skill} exceeded its memory cap of ${limits.memoryMb} MB (raise limits.memoryMb if the skill really needs more)`, { retryable: false });
        case "timeout":
          throw new SkillError("E_TIMEOUT", `${skill} did not finish within timeoutMs (${limits.timeoutMs} ms)`, { retryable: true });
        case "cancelled":
          throw new SkillError("E_CANCELLED", `${skill} was cancelled: ${outcome.message}`, { retryable: false, details: { reason: outcome.message } });
        case "compile":
          throw new SkillError("E_SKILL_ERROR", `${skill} could not be loaded: ${outcome.message}`, { retryable: false });
        case "output-size":
          throw new SkillError("E_OUTPUT_INVALID", `${skill}: ${outcome.message}`);
        case "crash":
        case "internal":
          throw new SkillError("E_SKILL_ERROR", `${skill}: ${outcome.message}`, { retryable: true });
      }
  }
}

export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split("\n")[0] ?? msg;
}

function errorName(err: unknown): string {
  if (err instanceof Error) return err.name;
  return "Error";
}
