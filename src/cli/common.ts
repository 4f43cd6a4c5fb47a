import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { didYouMean } from "../util/suggest.js";

export { closest, didYouMean } from "../util/suggest.js";

/** A usage error: printed without a stack, exit code 2 (with --json: one CallResult-shaped object). */
export class UsageError extends Error {
  /** the error code a --json caller sees; bad flags and arguments are a bad request */
  readonly code: "E_INPUT_INVALID" | "E_SKILL_NOT_FOUND" | "E_POLICY_INVALID";
  constructor(message: string, code: UsageError["code"] = "E_INPUT_INVALID") {
    super(message);
    this.code = code;
  }
}

export type Out = { out: (s: string) => void; err: (s: string) => void };

/**
 * How many positional arguments each command (and subcommand) takes; anything beyond is refused,
 * so a mistyped flag value (`mcp --trust user-verified extra`) never silently changes behaviour.
 */
const POSITIONALS: Record<string, number | Record<string, number>> = {
  run: 1,
  list: 0,
  tools: 0,
  mcp: 0,
  sign: 1,
  keygen: 1,
  validate: Number.POSITIVE_INFINITY,
  audit: { verify: 1, tail: 1, review: 1, stats: 1 },
  approvals: { list: 1, approve: 2, deny: 2 },
  policy: { test: 2, diff: 3, versions: 1, show: 1 },
  "policy show": 0,
};

/** Parses a command's flags strictly: an unknown flag or an extra argument is a UsageError with a suggestion. */
export function parse<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, command: string) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = (err as Error).message.split("\n")[0] ?? "";
    const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1];
    const hint = unknown ? didYouMean(unknown.replace(/^-+/, "").split("=")[0]!, Object.keys(options), (s) => `--${s}`) : "";
    throw new UsageError(`skillbox ${command}: ${message.replace(/\. To specify a positional argument.*$/, "")}${hint}\nRun \`skillbox ${command} --help\` for usage.`);
  }
  const limit = POSITIONALS[command];
  const max = typeof limit === "object" ? (limit[parsed.positionals[0] ?? ""] ?? Number.POSITIVE_INFINITY) : (limit ?? Number.POSITIVE_INFINITY);
  if (parsed.positionals.length > max) {
    const extra = parsed.positionals[max]!;
    throw new UsageError(`skillbox ${command}: unexpected argument "${extra}"${extra.startsWith("-") ? "" : " (flags take the form --name value)"}\nRun \`skillbox ${command} --help\` for usage.`);
  }
  return parsed;
}

/** `--trust`: one of the trust levels, default untrusted. */
export function trustFlag(value: string | undefined, levels: readonly string[]): string {
  const t = value ?? "untrusted";
  if (!levels.includes(t)) throw new UsageError(`--trust must be one of ${levels.join(", ")}; got "${t}"${didYouMean(t, levels)}`);
  return t;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}
