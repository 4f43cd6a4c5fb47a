import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseDuration, reviewEvents, statsOf, type AuditEvent } from "../audit/review.js";
import { readPgLines } from "../audit/pg-sink.js";
import { verifyAuditText } from "../audit/verify.js";
import { parse, UsageError, type Out } from "./common.js";
import { renderReview, renderStats } from "./report.js";
import { tailAudit } from "./tail.js";

/** `skillbox audit verify|tail|review|stats`: reads the security log from a file or PostgreSQL. */
export async function cmdAudit(args: string[], io: Out): Promise<number> {
  const { values, positionals } = parse(
    args,
    { audit: { type: "string" }, postgres: { type: "string" }, table: { type: "string" }, json: { type: "boolean" }, n: { type: "string", short: "n" }, follow: { type: "boolean", short: "f" }, since: { type: "string" }, session: { type: "string" } },
    "audit",
  );
  const sub = positionals[0];
  if (!["verify", "tail", "review", "stats"].includes(sub ?? "")) throw new UsageError(`skillbox audit: expected verify, tail, review or stats, got ${sub === undefined ? "nothing" : `"${sub}"`}`);
  if (values.postgres !== undefined) {
    if (sub === "tail" && values.follow) throw new UsageError("skillbox audit tail -f follows a file, not PostgreSQL");
    let lines: string[];
    try {
      lines = await readPgLines(values.postgres, values.table ?? "skillbox_audit");
    } catch (err) {
      throw new UsageError(`skillbox audit: cannot read PostgreSQL: ${(err as Error).message}`);
    }
    return auditReport(sub!, lines.join("\n") + (lines.length ? "\n" : ""), `PostgreSQL table ${values.table ?? "skillbox_audit"}`, values, io);
  }
  const file = resolve(values.audit ?? ".skillbox/audit.jsonl");
  if (!existsSync(file)) throw new UsageError(`skillbox audit: no security log at ${file} (use --audit FILE)`);
  if (sub === "tail" && values.follow) {
    const text = readFileSync(file, "utf8");
    for (const line of tailAudit(text, tailCount(values.n), values.json === true)) io.out(line);
    await follow(file, Buffer.byteLength(text), values.json === true, io);
    return 0;
  }
  return auditReport(sub!, readFileSync(file, "utf8"), file, values, io);
}

function tailCount(n: string | undefined): number {
  const count = n === undefined ? 20 : Number(n);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`skillbox audit tail: -n must be a positive whole number, got "${n}"`);
  return count;
}

/** verify, tail, stats or review over the text of a log (from a file or PostgreSQL). */
function auditReport(sub: string, text: string, source: string, values: { json?: boolean | undefined; n?: string | undefined; since?: string | undefined; session?: string | undefined }, io: Out): number {
  if (sub === "verify") {
    const r = verifyAuditText(text);
    const file = source;
    if (values.json) io.out(JSON.stringify(r));
    else if (r.ok) io.out(`✔ ${file}: ${r.lines} lines, chain intact${r.tornLines ? ` (line ${r.tornLines.join(", ")} cut off by a crash, chain continued)` : ""}`);
    else io.out(`✖ ${file}: ${r.problem}`);
    return r.ok ? 0 : 1;
  }
  if (sub === "tail") {
    for (const line of tailAudit(text, tailCount(values.n), values.json === true)) io.out(line);
    return 0;
  }
  const events = parseEventsLenient(text);
  if (sub === "stats") {
    const s = statsOf(events);
    if (values.json) io.out(JSON.stringify(s));
    else for (const l of renderStats(s)) io.out(l);
    return 0;
  }
  let since: number | undefined;
  if (values.since !== undefined) {
    try {
      since = parseDuration(values.since);
    } catch (err) {
      throw new UsageError(`skillbox audit review: --since: ${(err as Error).message}`);
    }
  }
  const sessions = reviewEvents(events, { ...(since !== undefined ? { since } : {}), ...(values.session !== undefined ? { session: values.session } : {}) });
  if (values.json) io.out(JSON.stringify(sessions));
  else for (const l of renderReview(sessions)) io.out(l);
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
      const fd = openSync(file, "r");
      const buf = Buffer.alloc(size - offset);
      readSync(fd, buf, 0, buf.length, offset);
      closeSync(fd);
      offset = size;
      const text = rest + buf.toString("utf8");
      const complete = text.slice(0, text.lastIndexOf("\n") + 1);
      rest = text.slice(complete.length);
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
