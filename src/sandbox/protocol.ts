/** Messages between the supervisor (host process) and a sandbox worker process. Plain data only. */

export interface SkillCode {
  /** cache key: skill name + entry hash; the worker keeps the sources of a key once sent */
  key: string;
  name: string;
  entry: string;
  files: [string, string][];
}

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

export type ToWorker =
  | { t: "load"; code: SkillCode }
  | RunRequest
  | { t: "cancel"; id: number }
  | { t: "capResult"; id: number; reqId: number; reply: string };

/** How one attempt ended inside the worker, before translation into a SkillError. */
export type RunOutcome =
  | { kind: "ok"; json: string }
  /** the skill threw (already turned into plain data inside the isolate) */
  | { kind: "thrown"; name: string; message: string; retryable: boolean }
  /** the engine stopped it: memory, sync timeout, disposal, compile/link failure */
  | { kind: "engine"; reason: "memory" | "timeout" | "cancelled" | "compile" | "output-size" | "internal"; message: string };

export type FromWorker =
  | { t: "ready"; pid: number }
  | { t: "cap"; id: number; reqId: number; op: string; args: string }
  | { t: "done"; id: number; outcome: RunOutcome; cpuMs: number };
