import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { readAnchor } from "../audit/anchor.js";
import { AUDIT_KEY_ENV } from "../config/options.js";
import { loadPolicyFile } from "../policy/load.js";
import { ed25519PublicKey } from "../audit/chain.js";
import { readPgLines } from "../audit/pg-sink.js";
import { parseDuration, reviewEvents, statsOf, type AuditEvent } from "../audit/review.js";
import { verifyAuditText, type VerifyOptions, type VerifyResult } from "../audit/verify.js";
import { escapeControl, escapeDeep, terminalSafeJson } from "../util/terminal.js";
import { parse, UsageError, type Out } from "./common.js";
import { renderReview, renderStats } from "./report.js";
import { tailAudit } from "./tail.js";

const OPTIONS = {
  audit: { type: "string" },
  postgres: { type: "string" },
  table: { type: "string" },
  json: { type: "boolean" },
  n: { type: "string", short: "n" },
  follow: { type: "boolean", short: "f" },
  since: { type: "string" },
  session: { type: "string" },
  "key-env": { type: "string" },
  anchor: { type: "string" },
  "public-key": { type: "string" },
  policy: { type: "string" },
} as const;

type Values = { json?: boolean | undefined; n?: string | undefined; since?: string | undefined; session?: string | undefined };

/** `skillbox audit verify|tail|review|stats`: reads the security log from a file or PostgreSQL. */
export async function cmdAudit(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(args, OPTIONS, "audit");
  const sub = positionals[0];
  if (!["verify", "tail", "review", "stats"].includes(sub ?? ""))
    throw new UsageError(`skillbox audit: expected verify, tail, review or stats, got ${sub === undefined ? "nothing" : `"${escapeControl(sub)}"`}`);
  const verifyOptions = chainKeys(values);
  if (values.postgres !== undefined) {
    if (sub === "tail" && values.follow) throw new UsageError("skillbox audit tail -f follows a file, not PostgreSQL");
    let lines: string[];
    try {
      lines = await readPgLines(values.postgres, values.table ?? "skillbox_audit");
    } catch (err) {
      throw new UsageError(`skillbox audit: cannot read PostgreSQL: ${(err as Error).message}`);
    }
    return auditReport(sub!, lines.join("\n") + (lines.length ? "\n" : ""), `PostgreSQL table ${values.table ?? "skillbox_audit"}`, values, verifyOptions, io);
  }
  const file = resolve(values.audit ?? ".skillbox/audit.jsonl");
  if (!existsSync(file)) throw new UsageError(`skillbox audit: no security log at ${file} (use --audit FILE)`);
  if (sub === "tail" && values.follow) {
    const text = readFileSync(file, "utf8");
    for (const line of tailAudit(text, tailCount(values.n), values.json === true)) io.out(line);
    await follow(file, Buffer.byteLength(text), values.json === true, io);
    return 0;
  }
  return auditReport(sub!, readFileSync(file, "utf8"), file, values, verifyOptions, io);
}

/** The keys the writer used: the HMAC key from SKILLBOX_AUDIT_KEY (or --key-env NAME), the anchor, the checkpoint public key. */
function chainKeys(values: { "key-env"?: string | undefined; anchor?: string | undefined; "public-key"?: string | undefined; policy?: string | undefined }): VerifyOptions {
  const envName = values["key-env"] ?? AUDIT_KEY_ENV;
  const key = process.env[envName];
  if (values["key-env"] !== undefined && !key) throw new UsageError(`skillbox audit: --key-env ${envName}: that environment variable is not set`);
  const options: VerifyOptions = { key: key || undefined };
  if (values.anchor !== undefined) {
    try {
      options.anchor = readAnchor(resolve(values.anchor));
    } catch (err) {
      throw new UsageError(`skillbox audit: --anchor: ${(err as Error).message}`);
    }
  } else {
    // The anchor the policy names (--policy FILE, or skillbox.policy.yaml here), once one was written.
    const policyFile = values.policy ?? (existsSync("skillbox.policy.yaml") ? "skillbox.policy.yaml" : undefined);
    if (policyFile !== undefined) {
      let anchor: string | undefined;
      try {
        anchor = loadPolicyFile(resolve(policyFile)).audit.anchor;
      } catch (err) {
        if (values.policy !== undefined) throw new UsageError(`skillbox audit: --policy: ${(err as Error).message}`);
      }
      if (anchor !== undefined && existsSync(anchor)) {
        try {
          options.anchor = readAnchor(anchor);
        } catch (err) {
          throw new UsageError(`skillbox audit: the policy's audit.anchor: ${(err as Error).message}`);
        }
      }
    }
  }
  if (values["public-key"] !== undefined) {
    const v = values["public-key"];
    try {
      options.publicKey = ed25519PublicKey(existsSync(v) ? readFileSync(v, "utf8") : v, `--public-key ${v}`);
    } catch (err) {
      throw new UsageError(`skillbox audit: ${(err as Error).message}`);
    }
  }
  return options;
}

function tailCount(n: string | undefined): number {
  const count = n === undefined ? 20 : Number(n);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`skillbox audit tail: -n must be a positive whole number, got "${escapeControl(String(n))}"`);
  return count;
}

/** One line on how the chain verified, for people. */
function describeVerify(r: VerifyResult, source: string): string[] {
  if (!r.ok) return [`✖ ${source}: ${r.problem}`];
  const out = [`✔ ${source}: ${r.lines} lines, chain intact${r.tornLines ? ` (line ${r.tornLines.join(", ")} cut off by a crash or a full disk, chain continued)` : ""}`];
  if (r.anchor) out.push(`  ✔ ends at or after its anchor (seq ${r.anchor.seq}, signature ${r.anchor.signature})`);
  if (r.checkpoints) {
    const c = r.checkpoints;
    out.push(
      `  ${c.checked === c.count ? "✔" : "·"} ${c.count} checkpoint(s), ${c.checked === c.count ? "all signatures valid" : `${c.count - c.checked} not checked (give the key: SKILLBOX_AUDIT_KEY / --key-env, or --public-key)`}; ${c.linesAfter} line(s) after the last one`,
    );
  } else out.push("  · no signed checkpoint: lines cut off the end, or a chain recomputed without a key, would not show (see README: what the chain proves)");
  if (!r.anchor) out.push("  · no anchor given (--anchor FILE): a log cut short at its end cannot be told from a complete one");
  if (r.gaps) for (const g of r.gaps) out.push(`  ⚠ line ${g.line}: ${g.lost} event(s) could not be written between ${g.from} and ${g.to} (recorded by the writer)`);
  return out;
}

/** verify, tail, stats or review over the text of a log (from a file or PostgreSQL). */
function auditReport(sub: string, text: string, source: string, values: Values, verifyOptions: VerifyOptions, io: Out): number {
  const json = (v: unknown) => io.out(terminalSafeJson(JSON.stringify(v)));
  if (sub === "verify") {
    const r = verifyAuditText(text, verifyOptions);
    if (values.json) json(r);
    else for (const l of describeVerify(r, source)) io.out(l);
    return r.ok ? 0 : 1;
  }
  if (sub === "tail") {
    for (const line of tailAudit(text, tailCount(values.n), values.json === true)) io.out(line);
    return 0;
  }
  const chain = verifyAuditText(text, verifyOptions);
  const chainNote = chain.ok ? undefined : `⚠ ${source}: the chain does not verify, so these figures may not be the whole truth: ${chain.problem}`;
  const events = escapeDeep(parseEventsLenient(text));
  if (sub === "stats") {
    const s = statsOf(events);
    if (values.json) json({ ...s, chain: { ok: chain.ok, ...(chain.problem ? { problem: chain.problem } : {}), lostEvents: chain.lostEvents ?? 0 } });
    else {
      for (const l of renderStats(s)) io.out(l);
      if (chain.lostEvents) io.out(`⚠ ${chain.lostEvents} event(s) could not be written (log.gap): the counts above miss them`);
      if (chainNote) io.out(chainNote);
    }
    return 0;
  }
  let since: number | undefined;
  if (values.since !== undefined) {
    try {
      since = parseDuration(values.since);
    } catch (err) {
      throw new UsageError(`skillbox audit review: --since: ${escapeControl((err as Error).message)}`);
    }
  }
  const sessions = reviewEvents(events, { ...(since !== undefined ? { since } : {}), ...(values.session !== undefined ? { session: values.session } : {}) });
  if (values.json) json(sessions);
  else for (const l of renderReview(sessions)) io.out(l);
  if (chainNote) io.err(chainNote);
  return 0;
}

/** Parsed events of a log; lines that are not JSON (a torn line) are skipped. */
function parseEventsLenient(text: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as AuditEvent);
    } catch {
      /* torn line */
    }
  }
  return out;
}

/** `tail -f`: prints lines appended to the file until interrupted. */
async function follow(file: string, from: number, raw: boolean, io: Out): Promise<void> {
  let offset = from;
  let rest = "";
  const decoder = new StringDecoder("utf8"); // a read may end inside a character
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        return;
      }
      if (size < offset) offset = 0; // replaced or truncated: start over
      if (size === offset) return;
      // Bounded reads: a log that grows by gigabytes between two ticks is read in pieces.
      const len = Math.min(size - offset, 4 * 1024 * 1024);
      const fd = openSync(file, "r");
      const buf = Buffer.alloc(len);
      readSync(fd, buf, 0, len, offset);
      closeSync(fd);
      offset += len;
      const text = rest + decoder.write(buf);
      const complete = text.slice(0, text.lastIndexOf("\n") + 1);
      rest = text.slice(complete.length);
      if (rest.length > 1024 * 1024) rest = ""; // a line that never ends is not held forever
      for (const line of tailAudit(complete, Number.MAX_SAFE_INTEGER, raw)) io.out(line);
    }, 250);
    const stop = () => {
      clearInterval(timer);
      done();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
