import { jsonDepth } from "../util/json-depth.js";

/*
 * How much of a skill's data the security log takes. One untrusted call used to write 12 MB
 * through ctx.log, and one denied ctx.exec with large arguments 33 MB: the log is the operator's
 * record, not a skill's storage.
 */

/** ctx.log (and console.*) lines kept per call; later lines are dropped. @default 1000 */
export const SKILL_LOG_MAX_EVENTS = 1000;
/** Bytes of ctx.log messages and fields kept per call; later lines are dropped. @default 1 MiB */
export const SKILL_LOG_MAX_BYTES = 1024 * 1024;
/** Characters of a ctx.log message kept; the full length is noted. */
export const LOG_MESSAGE_MAX_CHARS = 4096;
/** Bytes of ctx.log fields (as JSON) kept; past it, a preview. */
export const LOG_FIELDS_MAX_BYTES = 8192;
/** Characters of a capability target or denial reason kept; the full length is noted. */
export const LOG_TARGET_MAX_CHARS = 1024;
/** Process arguments kept in a process.exec event, and characters of each. */
export const LOG_ARGS_MAX = 32;
export const LOG_ARG_MAX_CHARS = 256;

/** The per-call budget of skill.log events. Shared by the call's attempts. */
export class SkillLogBudget {
  events = 0;
  bytes = 0;
  dropped = 0;

  constructor(
    readonly maxEvents = SKILL_LOG_MAX_EVENTS,
    readonly maxBytes = SKILL_LOG_MAX_BYTES,
  ) {}

  /** Whether a line of `bytes` may be written: `first-drop` once, when the budget is first exceeded. */
  admit(bytes: number): "keep" | "first-drop" | "drop" {
    if (this.dropped === 0 && this.events < this.maxEvents && this.bytes + bytes <= this.maxBytes) {
      this.events++;
      this.bytes += bytes;
      return "keep";
    }
    this.dropped++;
    return this.dropped === 1 ? "first-drop" : "drop";
  }
}

/** `text` cut to `max` characters, with `<name>Length` holding the full length when it was cut. */
export function clip(name: string, text: string, max = LOG_TARGET_MAX_CHARS): Record<string, unknown> {
  return text.length > max ? { [name]: `${text.slice(0, max)}…`, [`${name}Length`]: text.length } : { [name]: text };
}

/** Process arguments as logged: at most LOG_ARGS_MAX, each at most LOG_ARG_MAX_CHARS; totals noted when cut. */
export function clipArgs(args: readonly string[]): Record<string, unknown> {
  const cut = args.length > LOG_ARGS_MAX || args.some((a) => a.length > LOG_ARG_MAX_CHARS);
  if (!cut) return { args };
  return {
    args: args.slice(0, LOG_ARGS_MAX).map((a) => (a.length > LOG_ARG_MAX_CHARS ? `${a.slice(0, LOG_ARG_MAX_CHARS)}…` : a)),
    argsCount: args.length,
    argsLength: args.reduce((n, a) => n + a.length, 0),
  };
}

/** A ctx.log line as it is logged, and its size against the budget. */
export function skillLogEntry(message: unknown, fields: unknown): { entry: Record<string, unknown>; bytes: number } {
  const text = typeof message === "string" ? message : String(message);
  let logged: unknown = fields;
  let json: string;
  if (jsonDepth(fields) === Infinity) {
    logged = { truncated: true, reason: "nested too deeply" };
    json = JSON.stringify(logged);
  } else {
    json = JSON.stringify(fields ?? null) ?? "null";
    if (json.length > LOG_FIELDS_MAX_BYTES) {
      logged = { truncated: true, bytes: json.length, preview: json.slice(0, 512) };
      json = JSON.stringify(logged);
    }
  }
  const entry = { ...clip("message", text, LOG_MESSAGE_MAX_CHARS), fields: logged };
  return { entry, bytes: Math.min(text.length, LOG_MESSAGE_MAX_CHARS) + json.length };
}
