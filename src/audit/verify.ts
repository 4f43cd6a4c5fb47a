import { readFileSync } from "node:fs";
import { checkHead, GENESIS, lineHash, type CheckpointKeys } from "./chain.js";

/** The head of the chain as last recorded outside the log (see anchor.ts). */
export interface AnchorRecord {
  seq: number;
  hash: string;
  time?: string;
  sig?: unknown;
}

export interface VerifyOptions {
  /** the chain's HMAC key; @default none (a plain SHA-256 chain) */
  key?: string | undefined;
  /** Ed25519 public key for checkpoint signatures */
  publicKey?: CheckpointKeys["publicKey"];
  /** the head recorded outside the log: a log ending before it is truncated */
  anchor?: AnchorRecord | undefined;
}

export type VerifyProblem = "key-required" | "wrong-key" | "not-keyed" | "edited" | "truncated" | "torn" | "bad-checkpoint" | "anchor-mismatch";

export interface LogGap {
  /** 1-based line of the log.gap event */
  line: number;
  lost: number;
  from: string;
  to: string;
}

export interface VerifyResult {
  ok: boolean;
  lines: number;
  /** lines cut off by a crash that the chain then continued from (1-based) */
  tornLines?: number[];
  /** 1-based line of the first problem */
  line?: number;
  problem?: string;
  reason?: VerifyProblem;
  truncated?: boolean;
  /** for a truncated log: how many lines are known to be missing at its end */
  missingLines?: number;
  /** events the writer could not write, as it recorded them (log.gap events) */
  gaps?: LogGap[];
  lostEvents?: number;
  /** signed checkpoints found; how many of them could be checked with the keys given */
  checkpoints?: { count: number; checked: number; lastLine: number; linesAfter: number };
  /** the anchor's head was found in the log with the same hash (and a valid signature, when checkable) */
  anchor?: { seq: number; signature: "valid" | "unchecked" };
}

interface Entry {
  seq?: unknown;
  prev?: unknown;
  event?: unknown;
  head?: { seq?: unknown; hash?: unknown };
  sig?: unknown;
  lost?: unknown;
  from?: unknown;
  to?: unknown;
}

function parse(line: string): Entry | undefined {
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Entry) : undefined;
  } catch {
    return undefined;
  }
}

/** How many links of the first `limit` hold under `key`: tells a wrong or missing key from tampering. */
function linksHolding(lines: string[], key: string | undefined, limit = 64): { links: number; holding: number } {
  let links = 0;
  let holding = 0;
  for (let i = 1; i < lines.length && links < limit; i++) {
    const m = /^\{"seq":\d+,"prev":"([0-9a-f]{64})"/.exec(lines[i]!);
    if (!m) continue;
    links++;
    if (m[1] === lineHash(lines[i - 1]!, key)) holding++;
  }
  return { links, holding };
}

/**
 * Walks a security log and checks the chain: each line's `prev` is the hash of the line before it
 * (HMAC with the key) and `seq` goes up by one; signed checkpoints are checked with the keys given;
 * an anchor (the head recorded outside the log) shows a log cut short at its end. A last line cut off
 * mid-write is reported as truncated, not as tampering.
 */
export function verifyAuditText(text: string, keyOrOptions?: string | VerifyOptions): VerifyResult {
  const opts: VerifyOptions = typeof keyOrOptions === "string" || keyOrOptions === undefined ? { key: keyOrOptions } : keyOrOptions;
  const key = opts.key;
  const keys: CheckpointKeys = { hmacKey: key, publicKey: opts.publicKey };
  const endsClean = text.endsWith("\n") || text === "";
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();

  const sample = linksHolding(lines, key);
  if (sample.links > 0 && sample.holding === 0) {
    if (key === undefined)
      return {
        ok: false,
        lines: 0,
        line: 2,
        reason: "key-required",
        problem: "the chain is keyed (HMAC): verify it with its key (SKILLBOX_AUDIT_KEY, or --key-env NAME); without it nothing can be checked",
      };
    const plain = linksHolding(lines, undefined);
    if (plain.holding > 0) return { ok: false, lines: 0, line: 2, reason: "not-keyed", problem: "the chain is not keyed (plain SHA-256), but a key was given: verify it without a key" };
    return { ok: false, lines: 0, line: 2, reason: "wrong-key", problem: "wrong key: no link of the chain holds with the key given (or every line was rewritten)" };
  }

  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  const torn: number[] = [];
  const gaps: LogGap[] = [];
  let checkpoints = 0;
  let checked = 0;
  let lastCheckpointLine = 0;
  let anchorHash: string | undefined;
  const fail = (i: number, reason: VerifyProblem, problem: string, extra: Partial<VerifyResult> = {}): VerifyResult => ({ ok: false, lines: i, line: i + 1, reason, problem, ...extra });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const entry = parse(line);
    if (entry === undefined) {
      if (i === lines.length - 1 && !endsClean) return fail(i, "torn", `line ${i + 1} is cut off (the writer stopped mid-line); the ${i} lines before it verify`, { truncated: true });
      // A line torn by a crash or a full disk, after which the writer chained on from it.
      const next = lines[i + 1];
      if (next?.includes(`"prev":"${lineHash(line, key)}"`) && /^\{"seq":\d/.test(line)) {
        torn.push(i + 1);
        prevHash = lineHash(line, key);
        prevSeq = Number(/"seq":(\d+)/.exec(line)?.[1] ?? prevSeq);
        continue;
      }
      return fail(i, "edited", `line ${i + 1} is not valid JSON: edited`);
    }
    if (typeof entry.seq !== "number" || typeof entry.prev !== "string") return fail(i, "edited", `line ${i + 1} has no seq/prev: not a skillbox log line, or edited`);
    if (prevHash === undefined) {
      if (entry.seq !== 1 || entry.prev !== GENESIS) return fail(0, "edited", "line 1 does not start the chain (seq 1, genesis prev): the first lines were removed or edited");
    } else {
      if (entry.prev !== prevHash) {
        const what = entry.seq === (prevSeq ?? 0) + 1 ? "the line before it was edited" : "a line was removed, inserted or reordered here";
        return fail(i, "edited", `line ${i + 1} (seq ${String(entry.seq)}): prev hash does not match line ${i}: ${what}`);
      }
      if (entry.seq !== (prevSeq ?? 0) + 1) return fail(i, "edited", `line ${i + 1}: seq ${String(entry.seq)} follows ${prevSeq}: a line was removed, inserted or reordered`);
    }
    if (entry.event === "log.checkpoint") {
      const head = entry.head;
      if (!head || head.seq !== entry.seq - 1 || head.hash !== entry.prev) return fail(i, "bad-checkpoint", `line ${i + 1}: the checkpoint names a head other than the line before it: edited`);
      // Unsigned (the writer had no key): it still marks the head, but proves nothing against a forger.
      const valid = entry.sig === null || entry.sig === undefined ? undefined : checkHead(keys, entry.seq - 1, entry.prev, entry.sig);
      if (valid === false) return fail(i, "bad-checkpoint", `line ${i + 1}: the checkpoint's signature does not match the chain before it: the log was rewritten up to here`);
      checkpoints++;
      if (valid) checked++;
      lastCheckpointLine = i + 1;
    } else if (entry.event === "log.gap") {
      gaps.push({ line: i + 1, lost: Number(entry.lost ?? 0), from: String(entry.from ?? ""), to: String(entry.to ?? "") });
    }
    prevHash = lineHash(line, key);
    prevSeq = entry.seq;
    if (opts.anchor && entry.seq === opts.anchor.seq) anchorHash = prevHash;
  }
  const result: VerifyResult = { ok: true, lines: lines.length };
  if (torn.length > 0) result.tornLines = torn;
  if (gaps.length > 0) {
    result.gaps = gaps;
    result.lostEvents = gaps.reduce((n, g) => n + g.lost, 0);
  }
  if (checkpoints > 0) result.checkpoints = { count: checkpoints, checked, lastLine: lastCheckpointLine, linesAfter: lines.length - lastCheckpointLine };
  const anchor = opts.anchor;
  if (anchor) {
    const lastSeq = prevSeq ?? 0;
    const sig = anchor.sig === undefined || anchor.sig === null ? undefined : checkHead(keys, anchor.seq, anchor.hash, anchor.sig);
    if (sig === false) return { ...result, ok: false, reason: "anchor-mismatch", problem: `the anchor's signature does not match its head (seq ${anchor.seq}): the anchor was edited` };
    if (lastSeq < anchor.seq) {
      const missing = anchor.seq - lastSeq;
      return {
        ...result,
        ok: false,
        reason: "truncated",
        truncated: true,
        missingLines: missing,
        line: lines.length + 1,
        problem: `truncated: the log ends at seq ${lastSeq} but its anchor recorded seq ${anchor.seq}${anchor.time ? ` at ${anchor.time}` : ""}: ${missing} line(s) missing at the end`,
      };
    }
    if (anchorHash !== anchor.hash)
      return { ...result, ok: false, reason: "anchor-mismatch", line: anchor.seq, problem: `the line with seq ${anchor.seq} is not the one the anchor recorded: the log was rewritten up to there` };
    result.anchor = { seq: anchor.seq, signature: sig ? "valid" : "unchecked" };
  }
  return result;
}

export function verifyAuditFile(file: string, keyOrOptions: string | VerifyOptions | undefined = process.env["SKILLBOX_AUDIT_KEY"]): VerifyResult {
  return verifyAuditText(readFileSync(file, "utf8"), keyOrOptions);
}
