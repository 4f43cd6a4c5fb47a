/** Messages between the supervisor (host process) and a sandbox worker process. Plain data only. */

export interface SkillCode {
  /** cache key: skill name + entry hash; the worker keeps the sources of a key once sent */
  key: string;
  name: string;
  entry: string;
  files: [string, string][];
}

/** One attempt. A worker runs one at a time: the supervisor never sends a second before `done`. */
export interface RunRequest {
  t: "run";
  id: number;
  key: string;
  inputJson: string;
  envJson: string;
  memoryMb: number;
  timeoutMs: number;
  outputBytes: number;
}

export type ToWorker = { t: "load"; code: SkillCode } | RunRequest | { t: "cancel"; id: number } | { t: "capResult"; id: number; reqId: number; reply: string };

/** How one attempt ended inside the worker, before translation into a SkillError. */
export type RunOutcome =
  /** `json` is the output as the skill's isolate encoded it: the bytes the output cap applies to */
  | { kind: "ok"; json: string }
  /** the skill threw (already turned into plain data inside the isolate) */
  | { kind: "thrown"; name: string; message: string; retryable: boolean }
  /**
   * the engine stopped it: memory, deadline, the caller's cancel, compile/link failure, its
   * worker process died (`crash`)
   */
  | { kind: "engine"; reason: EngineReason; message: string };

export type EngineReason = "memory" | "timeout" | "cancelled" | "compile" | "output-size" | "crash" | "internal";

export type FromWorker =
  | { t: "ready"; pid: number }
  | { t: "cap"; id: number; reqId: number; op: string; args: string }
  /**
   * `ready` lists the pool keys (skill key + memory cap) the worker holds a prepared isolate for,
   * so the supervisor can route the next call to a worker that needs no cold start; `rssBytes`
   * lets it recycle a worker that grows.
   */
  | { t: "done"; id: number; outcome: RunOutcome; cpuMs: number; rssBytes: number; ready: string[] }
  | { t: "pool"; ready: string[] };

/** The pool key of a prepared isolate: one skill's code at one memory cap. */
export function poolKey(codeKey: string, memoryMb: number): string {
  return `${codeKey}|${memoryMb}`;
}
