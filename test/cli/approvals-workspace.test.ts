import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../dist/src/cli/main.js";
import { openStateStore } from "../../dist/src/state/open.js";
import { tempDir } from "../helpers.js";

describe("skillbox approvals: state and log follow --workspace", () => {
  it("approve --workspace WS decides in WS/.skillbox and logs the decision to WS/.skillbox/audit.jsonl", async () => {
    const ws = tempDir();
    const store = await openStateStore(join(ws, ".skillbox"), { workspace: ws });
    let id: string;
    try {
      const check = await store.checkApproval(
        { rule: "approvals[0]", mode: "single-use", expiresInMs: 60_000, skill: "write-report", caller: "alice", inputDigest: "d1", input: {}, maxPendingPerCaller: 5, maxPendingPerSkill: 5 },
        Date.now(),
      );
      if (check.kind !== "pending") throw new Error(`expected a pending approval, got ${check.kind}`);
      id = check.approval.id;
    } finally {
      await store.close();
    }
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(["approvals", "approve", id, "--workspace", ws, "--reason", "ok"], { out: (s) => out.push(s), err: (s) => err.push(s) });
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const logFile = join(ws, ".skillbox", "audit.jsonl");
    expect(existsSync(logFile)).toBe(true);
    const events = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.find((e) => e["event"] === "approval.decided")).toMatchObject({ approvalId: id, decision: "approved", skill: "write-report", caller: "alice" });
  });
});
