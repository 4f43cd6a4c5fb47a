import { SkillError } from "../errors.js";
import type { RunOutcome } from "./protocol.js";

/**
 * The one place where how an attempt ended inside the sandbox becomes a result or a SkillError.
 * (isolated-vm reports memory overruns and timeouts only as message strings; the worker turns
 * those into reasons, and this turns reasons into codes.)
 */
export function translateOutcome(outcome: RunOutcome, limits: { memoryMb: number; timeoutMs: number; outputBytes: number }, skill: string): { output: unknown } {
  switch (outcome.kind) {
    case "ok": {
      if (Buffer.byteLength(outcome.json) > limits.outputBytes) {
        throw new SkillError("E_OUTPUT_INVALID", `${skill} returned ${Buffer.byteLength(outcome.json)} bytes of output, more than outputBytes (${limits.outputBytes})`);
      }
      return { output: JSON.parse(outcome.json) as unknown };
    }
    case "thrown":
      if (outcome.name === "OutputError") throw new SkillError("E_OUTPUT_INVALID", `${skill}: ${outcome.message}`);
      return fail(new SkillError("E_SKILL_ERROR", `${skill} threw ${outcome.name}: ${outcome.message}`, { retryable: outcome.retryable, details: { name: outcome.name } }));
    case "engine":
      switch (outcome.reason) {
        case "memory":
          return fail(new SkillError("E_MEMORY_LIMIT", `${skill} exceeded its memory cap of ${limits.memoryMb} MB (raise limits.memoryMb if the skill really needs more)`, { retryable: false }));
        case "timeout":
        case "cancelled":
          return fail(new SkillError("E_TIMEOUT", `${skill} did not finish within timeoutMs (${limits.timeoutMs} ms)`, { retryable: true }));
        case "compile":
          return fail(new SkillError("E_SKILL_ERROR", `${skill} could not be loaded: ${outcome.message}`, { retryable: false }));
        case "output-size":
          return fail(new SkillError("E_OUTPUT_INVALID", `${skill}: ${outcome.message}`));
        case "internal":
          return fail(new SkillError("E_SKILL_ERROR", `${skill}: ${outcome.message}`, { retryable: true }));
      }
  }
}

function fail(err: SkillError): never {
  throw err;
}
