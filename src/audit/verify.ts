import { readFileSync } from "node:fs";
import { GENESIS, lineHash } from "./chain.js";

export interface VerifyResult {
  ok: boolean;
  lines: number;
  /** lines cut off by a crash that the chain then continued from (1-based) */
  tornLines?: number[];
  /** 1-based line of the first problem */
  line?: number;
  problem?: string;
  truncated?: boolean;
}

/**
 * Walks a security log and checks the chain: each line's `prev` is the hash of the line
 * before it and `seq` goes up by one. Finds edited, removed, inserted and reordered lines;
 * a last line cut off mid-write is reported as truncated, not as tampering.
 */
export function verifyAuditText(text: string, key?: string): VerifyResult {
  const endsClean = text.endsWith("\n") || text === "";
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  const torn: number[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let entry: { seq?: unknown; prev?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      if (i === lines.length - 1 && !endsClean) return { ok: false, lines: i, line: i + 1, truncated: true, problem: `line ${i + 1} is cut off (the writer stopped mid-line); the ${i} lines before it verify` };
      // A line torn by a crash, after which a restarted writer chained on from it.
      const next = lines[i + 1];
      if (next !== undefined && next.includes(`"prev":"${lineHash(line, key)}"`) && /^\{"seq":/.test(line)) {
        torn.push(i + 1);
        prevHash = lineHash(line, key);
        prevSeq = Number(/"seq":(\d+)/.exec(line)?.[1] ?? prevSeq);
        continue;
      }
      return { ok: false, lines: i, line: i + 1, problem: `line ${i + 1} is not valid JSON: edited` };
    }
    if (typeof entry.seq !== "number" || typeof entry.prev !== "string") return { ok: false, lines: i, line: i + 1, problem: `line ${i + 1} has no seq/prev: not a skillbox log line, or edited` };
    if (prevHash === undefined) {
      if (entry.seq !== 1 || entry.prev !== GENESIS) return { ok: false, lines: 0, line: 1, problem: "line 1 does not start the chain (seq 1, genesis prev): the first lines were removed or edited" };
    } else {
      if (entry.prev !== prevHash) {
        const what = entry.seq === (prevSeq ?? 0) + 1 ? "the line before it was edited" : "a line was removed, inserted or reordered here";
        return { ok: false, lines: i, line: i + 1, problem: `line ${i + 1} (seq ${String(entry.seq)}): prev hash does not match line ${i}: ${what}` };
      }
      if (entry.seq !== (prevSeq ?? 0) + 1) return { ok: false, lines: i, line: i + 1, problem: `line ${i + 1}: seq ${String(entry.seq)} follows ${prevSeq}: a line was removed, inserted or reordered` };
    }
    prevHash = lineHash(line, key);
    prevSeq = entry.seq;
  }
  return torn.length > 0 ? { ok: true, lines: lines.length, tornLines: torn } : { ok: true, lines: lines.length };
}

export function verifyAuditFile(file: string, key = process.env["SKILLBOX_AUDIT_KEY"]): VerifyResult {
  return verifyAuditText(readFileSync(file, "utf8"), key);
}
