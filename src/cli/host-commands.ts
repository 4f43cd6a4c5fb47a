// The commands that open a SkillHost: run, list, tools, mcp.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ParseArgsConfig } from "node:util";
import type { CallOptions } from "../call/caller.js";
import type { CallResult } from "../call/result.js";
import { exitCodeFor } from "../errors.js";
import { SkillHost } from "../host.js";
import { TRUST_LEVELS, type TrustLevel } from "../policy/trust.js";
import { TOOL_FORMATS, type ToolFormat } from "../tools.js";
import { isPostgresUrl } from "../state/spec.js";
import { closest, didYouMean, packageVersion, parse, trustFlag, UsageError, type Out } from "./common.js";

export const HOST_OPTIONS = {
  skills: { type: "string" },
  state: { type: "string" },
  policy: { type: "string" },
  workspace: { type: "string" },
  audit: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

type HostFlags = { skills?: string | undefined; policy?: string | undefined; workspace?: string | undefined; audit?: string | undefined; state?: string | undefined };

/** Where the host's folders are, from the flags: the log and the state default to the workspace, not the current folder. */
export function hostPaths(values: HostFlags): { workspace: string; skillsDir: string; audit?: string; state?: string } {
  const workspace = resolve(values.workspace ?? ".");
  if (!existsSync(workspace) || !statSync(workspace).isDirectory()) throw new UsageError(`--workspace ${values.workspace}: no such folder`);
  const skillsDir = resolve(values.skills ?? join(workspace, "skills"));
  if (values.skills !== undefined && !existsSync(skillsDir)) throw new UsageError(`--skills ${values.skills}: no such folder`);
  return {
    workspace,
    skillsDir,
    ...(values.audit !== undefined ? { audit: resolve(values.audit) } : {}),
    // A folder is taken from the current directory; a postgres:// URL as given.
    ...(values.state !== undefined ? { state: isPostgresUrl(values.state) ? values.state : resolve(values.state) } : {}),
  };
}

/** `needsState: false` for commands that run and decide nothing (list, tools): they never open the shared state store. */
export async function openHost(values: HostFlags, io: Out, warm = true, needsState = true): Promise<SkillHost> {
  const paths = hostPaths(values);
  const postgres = process.env["SKILLBOX_AUDIT_POSTGRES"];
  return SkillHost.open({
    workspace: paths.workspace,
    skillsDir: paths.skillsDir,
    ...(values.policy !== undefined ? { policy: resolve(values.policy) } : {}),
    ...(!needsState ? { state: "memory" } : paths.state !== undefined ? { state: paths.state } : {}),
    // Teams storing the log in PostgreSQL set this once in the environment.
    ...(paths.audit !== undefined || postgres ? { audit: { ...(paths.audit !== undefined ? { file: paths.audit } : {}), ...(postgres ? { postgres } : {}) } } : {}),
    onWarning: io.err,
    warm,
  });
}

/** The input object from --input, --input-file FILE, or --input-file - (standard input). */
async function readInput(values: { input?: string | undefined; "input-file"?: string | undefined }): Promise<unknown> {
  if (values.input !== undefined && values["input-file"] !== undefined) throw new UsageError("skillbox run: give --input or --input-file, not both");
  let text = values.input ?? "{}";
  const file = values["input-file"];
  if (file !== undefined) {
    try {
      text = file === "-" ? await readStdin() : readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`skillbox run: cannot read --input-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const flag = file === undefined ? "--input" : `--input-file ${file}`;
    throw new UsageError(`skillbox run: ${flag} is not valid JSON: ${(err as Error).message}\nExample: --input '{"text": "hello"}'`);
  }
}

/** Standard input, whole, up to the host's input cap (a bigger input is refused there anyway). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > 16 * 1024 * 1024) throw new UsageError("skillbox run: standard input is larger than 16 MiB");
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * SIGINT/SIGTERM while a command works: `onFirst` cancels what is in flight; a second signal
 * leaves at once. Returns the signal seen (if any) and a function that removes the handlers.
 */
export function interruptible(io: Out, onFirst: (signal: NodeJS.Signals) => void): { seen(): NodeJS.Signals | undefined; off(): void } {
  let seen: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (seen) process.exit(exitForSignal(signal));
    seen = signal;
    io.err(`skillbox: ${signal}: cancelling calls in flight (again to quit at once)`);
    onFirst(signal);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    seen: () => seen,
    off: () => {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
    },
  };
}

export function exitForSignal(signal: NodeJS.Signals): number {
  return signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1;
}

export async function cmdRun(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...HOST_OPTIONS, input: { type: "string" }, "input-file": { type: "string" }, trust: { type: "string" }, caller: { type: "string" }, session: { type: "string" } },
    "run",
  );
  const [name] = positionals;
  if (!name) throw new UsageError("skillbox run: which skill? Usage: skillbox run <skill> [--input JSON]   (skillbox list shows them)");
  const trust = trustFlag(values.trust, TRUST_LEVELS) as TrustLevel;
  const input = await readInput(values);
  const host = await openHost(values, io);
  const controller = new AbortController();
  const interrupt = interruptible(io, (signal) => controller.abort(new Error(`interrupted by ${signal}`)));
  let result: CallResult;
  try {
    const options = {
      caller: { id: values.caller ?? "cli", trust, ...(values.session !== undefined ? { session: values.session } : {}) },
      signal: controller.signal,
      // Only what a person waits on: a retry being scheduled, and the attempts after the first.
      onProgress: (p: Progress) => {
        if ((p.retryDelayMs ?? 0) > 0 || (p.attempt ?? 1) > 1) io.err(describeProgress(name, p));
      },
    };
    result = await host.call(name, input, options as CallOptions);
  } finally {
    await host.close();
    interrupt.off();
  }
  if (!result.ok && result.error.code === "E_SKILL_NOT_FOUND") {
    const near = closest(
      name,
      host.list().map((s) => s.name),
    );
    if (near) result.error.message += ` (did you mean "${near}"?)`;
  }
  if (values.json) io.out(JSON.stringify(result));
  else if (result.ok) {
    io.out(JSON.stringify(result.output, null, 2));
    io.err(`✔ ${name}: ok in ${result.durationMs.toFixed(1)} ms, ${result.attempts} attempt(s)${result.fallback ? `, output from fallback ${result.fallback}` : ""} (call ${result.callId})`);
  } else {
    io.err(`✖ ${name}: ${result.error.code}: ${result.error.message}`);
    const hint = grantHint(host, name, trust, result);
    if (hint) io.err(`  ${hint}`);
    io.err(
      `  ${result.attempts} attempt(s)${result.fallback ? `, fallback ${result.fallback} tried` : ""}, ${result.durationMs.toFixed(1)} ms (call ${result.callId}); security log: ${host.audit.file}`,
    );
  }
  const signal = interrupt.seen();
  if (signal) return exitForSignal(signal);
  return result.ok ? 0 : exitCodeFor(result.error.code);
}

/** What the host reports while a call retries or waits (attempt N of M, the delay before the next). */
export interface Progress {
  attempt?: number;
  attempts?: number;
  retryDelayMs?: number;
  message?: string;
}

export function describeProgress(name: string, p: Progress): string {
  if (p.message) return `… ${name}: ${p.message}`;
  const of = p.attempt !== undefined ? `attempt ${p.attempt}${p.attempts !== undefined ? ` of ${p.attempts}` : ""}` : "";
  const wait = p.retryDelayMs !== undefined ? `, next in ${Math.round(p.retryDelayMs)} ms` : "";
  return `… ${name}: ${[of + wait, p.message].filter(Boolean).join(": ")}`;
}

/**
 * How to get a refused call through, Deno-style: the lowest trust level that may run the skill,
 * else the policy section to widen. Empty for other failures.
 */
export function grantHint(host: SkillHost, name: string, trust: TrustLevel, result: CallResult): string {
  if (result.ok) return "";
  if (result.error.code === "E_APPROVAL_REQUIRED") {
    const id = (result.error.details as { approvalId?: string } | undefined)?.approvalId ?? "<id>";
    const state = host.stateDir === join(host.workspace, ".skillbox") ? "" : ` --state ${JSON.stringify(host.stateDir)}`;
    return `hint: approve it with \`skillbox approvals approve ${id} --workspace ${JSON.stringify(host.workspace)}${state}\`, then run the same command again`;
  }
  if (result.error.code !== "E_PERMISSION_DENIED") return "";
  const details = result.error.details as { needs?: { kind: string; target: string }[] } | undefined;
  if (!details?.needs?.length) return "";
  let lowest: TrustLevel | undefined;
  try {
    lowest = TRUST_LEVELS.find((t) => TRUST_LEVELS.indexOf(t) > TRUST_LEVELS.indexOf(trust) && host.authorize(name, t).ok);
  } catch {
    return "";
  }
  const policyFile = host.policy.source === "built-in" ? join(host.workspace, "skillbox.policy.yaml") : host.policy.source;
  const sections = [...new Set(details.needs.map((n) => n.kind))];
  const widen = `or let trust level "${trust}" have it in ${policyFile}: trust.${trust}.${sections.join(" / trust." + trust + ".")} (see skillbox policy show --trust ${trust})`;
  return lowest ? `hint: trust level "${lowest}" may run ${name} (--trust ${lowest}), ${widen}` : `hint: no trust level may run ${name} under this policy; ${widen}`;
}

export async function cmdList(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, HOST_OPTIONS, "list");
  const host = await openHost(values, io, false, false);
  const skills = host.list();
  await host.close();
  const allowedAt = (name: string) => TRUST_LEVELS.filter((t) => host.authorize(name, t).ok);
  if (values.json) {
    io.out(JSON.stringify(skills.map((s) => ({ ...s, allowedAt: allowedAt(s.name) }))));
    return host.loadProblems.length > 0 ? 2 : 0;
  }
  if (skills.length === 0) io.out(`no skills in ${hostPaths(values).skillsDir}`);
  for (const s of skills) {
    const levels = allowedAt(s.name);
    io.out(`${s.name.padEnd(20)} ${s.version.padEnd(8)} runs at: ${(levels[0] ?? "no level").padEnd(13)} ${s.description.split(/(?<=\.)\s/)[0]}`);
  }
  return host.loadProblems.length > 0 ? 2 : 0;
}

export async function cmdTools(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, { ...HOST_OPTIONS, format: { type: "string" }, trust: { type: "string" } }, "tools");
  const format = values.format;
  if (!format || !(TOOL_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`skillbox tools: --format must be one of ${TOOL_FORMATS.join(", ")}${format ? didYouMean(format, TOOL_FORMATS) : ""}`);
  const trust = trustFlag(values.trust, TRUST_LEVELS) as TrustLevel;
  const host = await openHost(values, io, false, false);
  const tools = host.tools(format as ToolFormat, { trust });
  await host.close();
  io.out(JSON.stringify(tools, null, 2));
  return 0;
}

export async function cmdMcp(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, { ...HOST_OPTIONS, trust: { type: "string" }, caller: { type: "string" }, session: { type: "string" } }, "mcp");
  const trust = trustFlag(values.trust, TRUST_LEVELS) as TrustLevel;
  // stdout belongs to the protocol: everything else goes to stderr or the security log.
  const errOnly: Out = { out: io.err, err: io.err };
  // The server answers `initialize` first; the sandbox workers warm up afterwards.
  const host = await openHost(values, errOnly, false);
  const { serveMcp } = await import("../mcp/server.js");
  const server = await serveMcp(host, {
    trust,
    callerId: values.caller ?? "mcp",
    version: packageVersion(),
    ...(values.session !== undefined ? { session: values.session } : {}),
    log: io.err,
  });
  const interrupt = interruptible(errOnly, () => void server.close());
  await server.closed;
  interrupt.off();
  const signal = interrupt.seen();
  return signal ? exitForSignal(signal) : 0;
}
