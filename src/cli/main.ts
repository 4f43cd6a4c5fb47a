import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { ParseArgsConfig } from "node:util";
import { exitCodeFor, formatIssue, SkillError, ValidationError, type Issue } from "../errors.js";
import { SkillHost, type CallResult } from "../host.js";
import { listSkillDirs, loadSkillDir, MANIFEST_FILE } from "../manifest/load.js";
import { loadPolicyFile } from "../policy/load.js";
import { isTrustLevel, TRUST_LEVELS, type TrustLevel } from "../policy/trust.js";
import { TOOL_FORMATS, type ToolFormat } from "../tools.js";
import { parse, UsageError, type Out } from "./common.js";
import { cmdApprovals, cmdKeygen, cmdPolicy, cmdSign } from "./policy-commands.js";
import { cmdAudit } from "./audit-commands.js";

const USAGE = `skillbox: run JavaScript skills in V8 isolates, within what their manifest declares and their caller's trust allows

Usage:
  skillbox run <skill> [--input JSON | --input-file FILE] [--trust LEVEL] [--caller ID] [--session ID]
                       [--skills DIR] [--policy FILE] [--workspace DIR] [--audit FILE] [--json]
  skillbox list [--skills DIR] [--json]
  skillbox validate [PATH...]          manifests, skill folders and policy files
  skillbox tools --format mcp|openai|anthropic [--trust LEVEL] [--skills DIR] [--policy FILE]
  skillbox audit verify|tail|review|stats [--audit FILE | --postgres URL [--table T]] [-n N] [-f] [--since DURATION] [--session ID] [--json]
                       [--key-env NAME] [--anchor FILE] [--public-key KEY]   the chain key (default $SKILLBOX_AUDIT_KEY), head anchor, checkpoint key
  skillbox approvals list [--json] | approve ID [--reason T] | deny ID [--reason T]   [--state DIR] [--audit FILE]
  skillbox policy test [FILE] [--skills DIR] | diff A B [--json]   A and B: files, or versions kept in --state
  skillbox sign DIR [--key FILE] [--key-id NAME]   sign a skill folder (Ed25519 PEM key, or a shared HMAC secret)
  skillbox keygen FILE                  a new Ed25519 signing key; prints the public key for the policy
  skillbox mcp [--skills DIR] [--policy FILE] [--workspace DIR] [--trust LEVEL] [--caller ID] [--session ID] [--audit FILE]
                                       an MCP server on stdio (stdout carries protocol only)

Common options: --state DIR (approvals and policy snapshots; default ./.skillbox).
Trust levels: ${TRUST_LEVELS.join(", ")} (default untrusted).
Exit codes: 0 ok, 1 the skill failed at run time, 2 bad request or configuration, 3 refused by policy.`;

const std: Out = { out: (s) => process.stdout.write(s + "\n"), err: (s) => process.stderr.write(s + "\n") };

const COMMON = {
  skills: { type: "string" },
  state: { type: "string" },
  policy: { type: "string" },
  workspace: { type: "string" },
  audit: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

function trustFlag(value: string | undefined): TrustLevel {
  const t = value ?? "untrusted";
  if (!isTrustLevel(t)) throw new UsageError(`--trust must be one of ${TRUST_LEVELS.join(", ")}; got "${t}"`);
  return t;
}

export async function main(argv: string[], io: Out = std): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "run":
        return await cmdRun(rest, io);
      case "list":
        return await cmdList(rest, io);
      case "validate":
        return cmdValidate(rest, io);
      case "tools":
        return await cmdTools(rest, io);
      case "audit":
        return await cmdAudit(rest, io);
      case "mcp":
        return await cmdMcp(rest, io);
      case "approvals":
        return cmdApprovals(rest, io);
      case "policy":
        return await cmdPolicy(rest, io);
      case "sign":
        return cmdSign(rest, io);
      case "keygen":
        return cmdKeygen(rest, io);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      case "--version":
      case "-v":
        io.out(packageVersion());
        return 0;
      default:
        throw new UsageError(`skillbox: unknown command "${command}"\nRun \`skillbox --help\` for usage.`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(err.message);
      return 2;
    }
    if (err instanceof SkillError) {
      io.err(`skillbox: ${err.code}: ${err.message}`);
      return exitCodeFor(err.code);
    }
    io.err(`skillbox: internal error: ${(err as Error).message}`);
    return 1;
  }
}

async function cmdRun(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, input: { type: "string" }, "input-file": { type: "string" }, trust: { type: "string" }, caller: { type: "string" }, session: { type: "string" } }, "run");
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (!name) throw new UsageError("skillbox run: which skill? Usage: skillbox run <skill> [--input JSON]");
  if (extra.length > 0) throw new UsageError(`skillbox run: unexpected argument "${extra[0]}" (pass input with --input '{"key": "value"}')`);
  if (values.input !== undefined && values["input-file"] !== undefined) throw new UsageError("skillbox run: give --input or --input-file, not both");
  const trust = trustFlag(values.trust);
  let inputText = values.input ?? "{}";
  if (values["input-file"] !== undefined) {
    try {
      inputText = readFileSync(values["input-file"], "utf8");
    } catch (err) {
      throw new UsageError(`skillbox run: cannot read --input-file ${values["input-file"]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let input: unknown;
  try {
    input = JSON.parse(inputText);
  } catch (err) {
    throw new UsageError(`skillbox run: --input is not valid JSON: ${(err as Error).message}\nExample: --input '{"text": "hello"}'`);
  }
  const host = await openHost(values, io);
  let result: CallResult;
  try {
    result = await host.call(name, input, { caller: { id: values.caller ?? "cli", trust, ...(values.session !== undefined ? { session: values.session } : {}) } });
  } finally {
    await host.close();
  }
  if (values.json) io.out(JSON.stringify(result));
  else if (result.ok) {
    io.out(JSON.stringify(result.output, null, 2));
    io.err(`✔ ${name}: ok in ${result.durationMs.toFixed(1)} ms, ${result.attempts} attempt(s)${result.fallback ? `, output from fallback ${result.fallback}` : ""} (call ${result.callId})`);
  } else {
    io.err(`✖ ${name}: ${result.error.code}: ${result.error.message}`);
    io.err(`  ${result.attempts} attempt(s)${result.fallback ? `, fallback ${result.fallback} tried` : ""}, ${result.durationMs.toFixed(1)} ms (call ${result.callId}); security log: ${host.audit.file}`);
  }
  return result.ok ? 0 : exitCodeFor(result.error.code);
}

async function openHost(values: { skills?: string | undefined; policy?: string | undefined; workspace?: string | undefined; audit?: string | undefined; state?: string | undefined }, io: Out, warm = true): Promise<SkillHost> {
  const workspace = resolve(values.workspace ?? ".");
  if (!existsSync(workspace) || !statSync(workspace).isDirectory()) throw new UsageError(`--workspace ${values.workspace}: no such folder`);
  const skillsDir = resolve(values.skills ?? "skills");
  if (values.skills !== undefined && !existsSync(skillsDir)) throw new UsageError(`--skills ${values.skills}: no such folder`);
  return SkillHost.open({
    workspace,
    skillsDir,
    ...(values.policy !== undefined ? { policy: values.policy } : {}),
    ...(values.state !== undefined ? { stateDir: resolve(values.state) } : {}),
    audit: {
      file: resolve(values.audit ?? ".skillbox/audit.jsonl"),
      // Teams storing the log in PostgreSQL set this once in the environment.
      ...(process.env["SKILLBOX_AUDIT_POSTGRES"] ? { postgres: process.env["SKILLBOX_AUDIT_POSTGRES"] } : {}),
    },
    onWarning: io.err,
    warm,
  });
}

async function cmdList(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, COMMON, "list");
  const host = await openHost(values, io, false);
  const skills = host.list();
  await host.close();
  if (values.json) {
    io.out(JSON.stringify(skills.map((s) => ({ ...s, allowedAt: TRUST_LEVELS.filter((t) => host.authorize(s.name, t).ok) }))));
    return 0;
  }
  if (skills.length === 0) io.out(`no skills in ${resolve(values.skills ?? "skills")}`);
  for (const s of skills) {
    const levels = TRUST_LEVELS.filter((t) => host.authorize(s.name, t).ok);
    io.out(`${s.name.padEnd(20)} ${s.version.padEnd(8)} runs at: ${(levels[0] ?? "no level").padEnd(13)} ${s.description.split(/(?<=\.)\s/)[0]}`);
  }
  return host.loadProblems.length > 0 ? 2 : 0;
}

function cmdValidate(args: string[], io: Out): number {
  const { values, positionals } = parse(args, { json: { type: "boolean" } }, "validate");
  const paths = positionals.length > 0 ? positionals : ["skills", ...(existsSync("skillbox.policy.yaml") ? ["skillbox.policy.yaml"] : [])];
  const results: { path: string; ok: boolean; kind: string; summary?: string; issues: Issue[] }[] = [];
  const check = (path: string, kind: string, fn: () => string) => {
    try {
      results.push({ path, ok: true, kind, summary: fn(), issues: [] });
    } catch (err) {
      const issues = err instanceof ValidationError ? err.issues : [{ file: path, field: "", message: err instanceof SkillError ? `${err.code}: ${err.message}` : (err as Error).message }];
      results.push({ path, ok: false, kind, issues });
    }
  };
  for (const p of paths) {
    const full = resolve(p);
    if (!existsSync(full)) {
      results.push({ path: p, ok: false, kind: "?", issues: [{ file: p, field: "", message: "no such file or folder" }] });
    } else if (statSync(full).isDirectory()) {
      if (existsSync(join(full, MANIFEST_FILE))) check(p, "skill", () => describeSkill(full));
      else {
        const dirs = listSkillDirs(full);
        if (dirs.length === 0) results.push({ path: p, ok: false, kind: "?", issues: [{ file: p, field: "", message: `no skill folders (with ${MANIFEST_FILE}) here` }] });
        for (const d of dirs) check(d, "skill", () => describeSkill(d));
      }
    } else if (basename(full) === MANIFEST_FILE) check(p, "skill", () => describeSkill(resolve(full, "..")));
    else check(p, "policy", () => `policy version ${loadPolicyFile(full).version}`);
  }
  if (values.json) io.out(JSON.stringify(results));
  else {
    for (const r of results) {
      if (r.ok) io.out(`✔ ${r.path}: ${r.summary}`);
      else {
        io.out(`✖ ${r.path}`);
        for (const i of r.issues) io.out(`    ${formatIssue(i)}`);
      }
    }
  }
  return results.every((r) => r.ok) ? 0 : 2;
}

function describeSkill(dir: string): string {
  const s = loadSkillDir(dir);
  return `${s.manifest.name} ${s.manifest.version}, entry sha256 ${s.entrySha256.slice(0, 12)}…`;
}

async function cmdTools(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, { ...COMMON, format: { type: "string" }, trust: { type: "string" } }, "tools");
  const format = values.format;
  if (!format || !(TOOL_FORMATS as readonly string[]).includes(format)) throw new UsageError(`skillbox tools: --format must be one of ${TOOL_FORMATS.join(", ")}`);
  const host = await openHost(values, io, false);
  const tools = host.tools(format as ToolFormat, { trust: trustFlag(values.trust) });
  await host.close();
  io.out(JSON.stringify(tools, null, 2));
  return 0;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

async function cmdMcp(args: string[], io: Out): Promise<number> {
  const { values } = parse(args, { ...COMMON, trust: { type: "string" }, caller: { type: "string" }, session: { type: "string" } }, "mcp");
  const trust = trustFlag(values.trust);
  // stdout belongs to the protocol: everything else goes to stderr or the security log.
  const host = await openHost(values, { out: io.err, err: io.err });
  const { serveMcp } = await import("../mcp/server.js");
  await new Promise<void>((resolveDone) => {
    void serveMcp(host, {
      trust,
      callerId: values.caller ?? "mcp",
      version: packageVersion(),
      ...(values.session !== undefined ? { session: values.session } : {}),
    }).then((srv) => {
      const done = () => void srv.close().then(resolveDone);
      process.stdin.once("close", done);
      process.once("SIGTERM", done);
      process.once("SIGINT", done);
    });
  });
  return 0;
}
