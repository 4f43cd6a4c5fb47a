// The command line's front door. It imports almost nothing itself: each command's module (and
// with it the host, the sandbox, the MCP SDK, pg) is loaded only when that command runs, so
// `--version` and `--help` start about as fast as Node does.
import { didYouMean, packageVersion, UsageError, type Out } from "./common.js";
import { HELP, OVERVIEW } from "./help.js";

type Command = (args: string[], io: Out) => number | Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import("./host-commands.js")).cmdRun,
  list: async () => (await import("./host-commands.js")).cmdList,
  tools: async () => (await import("./host-commands.js")).cmdTools,
  mcp: async () => (await import("./host-commands.js")).cmdMcp,
  validate: async () => (await import("./validate.js")).cmdValidate,
  audit: async () => (await import("./audit-commands.js")).cmdAudit,
  approvals: async () => (await import("./policy-commands.js")).cmdApprovals,
  policy: async () => {
    const [{ cmdPolicy }, { cmdPolicyShow }] = await Promise.all([import("./policy-commands.js"), import("./validate.js")]);
    return (args, io) => (args[0] === "show" ? cmdPolicyShow(args.slice(1), io) : cmdPolicy(args, io));
  },
  sign: async () => (await import("./policy-commands.js")).cmdSign,
  keygen: async () => (await import("./policy-commands.js")).cmdKeygen,
  schema: async () => (await import("./schema-command.js")).cmdSchema,
};

const std: Out = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };

/** Runs one command line; resolves to the exit code. Never throws. */
export async function main(argv: string[], io: Out = std): Promise<number> {
  const [command, ...rest] = argv;
  const json = rest.includes("--json");
  try {
    if (command === undefined) {
      io.err(OVERVIEW);
      return 2;
    }
    if (command === "help" || command === "--help" || command === "-h") {
      const topic = rest[0];
      io.out(topic !== undefined && HELP[topic] !== undefined ? HELP[topic] : OVERVIEW);
      return 0;
    }
    if (command === "--version" || command === "-v" || command === "version") {
      io.out(packageVersion());
      return 0;
    }
    const load = COMMANDS[command];
    if (!load) throw new UsageError(`skillbox: unknown command "${command}"${didYouMean(command, Object.keys(COMMANDS))}\nRun \`skillbox --help\` for the list of commands.`);
    // --help anywhere before a lone `--` prints help and runs nothing (`mcp --help` starts no server).
    const end = rest.indexOf("--");
    const flags = end < 0 ? rest : rest.slice(0, end);
    if (flags.includes("--help") || flags.includes("-h")) {
      io.out(HELP[command] ?? OVERVIEW);
      return 0;
    }
    const run = await load();
    return await run(rest, io);
  } catch (err) {
    return report(err, json, io);
  }
}

/** A failure before or outside a call: one clear line (no stack), and with --json one CallResult-shaped object. */
async function report(err: unknown, json: boolean, io: Out): Promise<number> {
  let code: string;
  let message: string;
  let details: unknown;
  let exit: number;
  if (err instanceof UsageError) {
    code = err.code;
    message = err.message;
    exit = 2;
  } else if ((err as Error)?.name === "UnsupportedRuntimeError") {
    code = "E_SKILL_ERROR";
    message = (err as Error).message;
    exit = 2;
  } else {
    const { SkillError, exitCodeFor } = await import("../errors.js");
    if (err instanceof SkillError) {
      code = err.code;
      message = `${err.code}: ${err.message}`;
      details = err.details;
      exit = exitCodeFor(err.code);
    } else {
      code = "E_SKILL_ERROR";
      message = `internal error: ${(err as Error)?.message ?? String(err)}`;
      exit = 1;
    }
  }
  io.err(message.startsWith("skillbox") ? message : `skillbox: ${message}`);
  if (json) {
    const error = { code, message: message.replace(/^E_[A-Z_]+: /, "").split("\nRun `skillbox")[0], retryable: false, ...(details !== undefined ? { details } : {}) };
    io.out(JSON.stringify({ ok: false, callId: null, error, attempts: 0, fallback: null, durationMs: 0 }));
  }
  return exit;
}
