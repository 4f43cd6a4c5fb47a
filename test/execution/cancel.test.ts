import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallProgress, SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, readEvents, waitFor, writeSkill } from "../helpers.js";

/** Pids of running processes running `command` (any path to it) with exactly `args` (zombies do not count). */
function processesWith(command: string, args: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [argv0, ...rest] = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").slice(0, -1);
      if (argv0?.split("/").pop() !== command || rest.join("\0") !== args.join("\0")) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const burn = (ms: number) => `{ const t0 = Date.now(); while (Date.now() - t0 < ${ms}) {} }`;

describe("cancellation: an AbortSignal ends the call at once, and nothing runs after it", () => {
  let fx: Fixture;
  let host: SkillHost;
  // A duration nobody else uses, so the test finds exactly its own process.
  const seconds = `20.${process.pid}`;
  beforeAll(async () => {
    fx = fixture();
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\ntrust:\n  trusted:\n    process:\n      - { command: sleep, args: ["/^[0-9.]+$/"] }\n`);
    writeSkill(fx.skills, "sleeper", `permissions:\n  process:\n    - { command: sleep, args: ["/^[0-9.]+$/"] }\nlimits: { timeoutMs: 30000 }\nretry: { attempts: 3, initialDelayMs: 10 }\n`, {
      "index.js": "export default async (i, ctx) => ctx.exec('sleep', [i.seconds]);",
    });
    writeSkill(fx.skills, "flaky", "retry: { attempts: 5, initialDelayMs: 400, factor: 1, jitter: false }\nfallback: { skill: quick }\n", {
      "index.js": "export default async (i, ctx) => { throw new ctx.RetryableError('upstream busy'); };",
    });
    writeSkill(fx.skills, "spin", "limits: { timeoutMs: 2000 }\n", { "index.js": `export default async () => { ${burn(1500)} return 'done'; };` });
    writeSkill(fx.skills, "quick", "", { "index.js": "export default async () => 'quick';" });
    host = await fx.open({ policy: join(fx.root, "policy.yaml"), workers: 2, maxConcurrent: 1 });
  });
  afterAll(async () => host.close());

  const trusted = { id: "t", trust: "trusted" as const };

  it("a cancelled call's process is gone within a second, the call is E_CANCELLED, not retried, and its slot is free", async () => {
    const controller = new AbortController();
    const pending = host.call("sleeper", { seconds }, { caller: trusted, signal: controller.signal });
    await waitFor("the skill's sleep to run", () => processesWith("sleep", [seconds]).length > 0);
    const t0 = performance.now();
    controller.abort();
    const r = await pending;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(!r.ok && r.error.code).toBe("E_CANCELLED");
    expect(r.attempts).toBe(1);
    expect(r.fallback).toBeNull();
    await waitFor("the sleep to be gone", () => processesWith("sleep", [seconds]).length === 0, { withinMs: 1000 });
    // maxConcurrent is 1: this call runs only if the cancelled one gave its slot back.
    const next = await host.call("quick", {});
    expect(next.ok && next.output).toBe("quick");
    const events = (await fx.events()).filter((e) => e["callId"] === r.callId);
    expect(events.find((e) => e["event"] === "call.end")).toMatchObject({ outcome: "error", code: "E_CANCELLED" });
    expect(events.filter((e) => e["event"] === "attempt.start").map((e) => e["attempt"])).toEqual([1]);
    expect(events.find((e) => e["event"] === "attempt.end")).toMatchObject({ attempt: 1, code: "E_CANCELLED", willRetry: false });
  });

  it("a signal already aborted refuses the call before any attempt", async () => {
    const r = await host.call("quick", {}, { signal: AbortSignal.abort(new Error("user went away")) });
    expect(!r.ok && r.error.code).toBe("E_CANCELLED");
    expect(!r.ok && r.error.message).toMatch(/user went away/);
    expect(r.attempts).toBe(0);
  });

  it("a call waiting for a concurrency slot leaves the line when cancelled; the running call is untouched", async () => {
    const running = host.call("spin", {});
    await waitFor("the first call to run", () => host.sandboxStats().inflight >= 1);
    const controller = new AbortController();
    const waiting = host.call("quick", {}, { signal: controller.signal });
    controller.abort();
    const w = await waiting;
    expect(!w.ok && w.error.code).toBe("E_CANCELLED");
    expect(w.attempts).toBe(0);
    const r = await running;
    expect(r.ok && r.output).toBe("done");
  });

  it("cancelling during the wait before a retry runs no further attempt and no fallback; progress tells each step", async () => {
    const heard: CallProgress[] = [];
    const controller = new AbortController();
    const pending = host.call("flaky", {}, { signal: controller.signal, onProgress: (p) => heard.push(p) });
    await waitFor("a retry to be scheduled", () => heard.some((p) => p.retryDelayMs > 0));
    controller.abort();
    const r = await pending;
    expect(!r.ok && r.error.code).toBe("E_CANCELLED");
    expect(r.attempts).toBe(1);
    expect(r.fallback).toBeNull();
    expect(heard).toEqual([
      { attempt: 1, attempts: 5, retryDelayMs: 0, message: "attempt 1 of 5" },
      { attempt: 2, attempts: 5, retryDelayMs: 400, message: "attempt 1 of 5 failed (E_SKILL_ERROR); attempt 2 in 400 ms" },
    ]);
    const events = (await fx.events()).filter((e) => e["callId"] === r.callId);
    expect(events.filter((e) => e["event"] === "attempt.start")).toHaveLength(1);
    expect(events.some((e) => e["event"] === "fallback.start")).toBe(false);
  });
});

describe("host.close() cancels calls in flight and never retries them", () => {
  it("a retrying call ends as E_CANCELLED at close, with no attempt after it", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "flaky", "retry: { attempts: 5, initialDelayMs: 300, factor: 1, jitter: false }\n", {
      "index.js": "export default async (i, ctx) => { throw new ctx.RetryableError('upstream busy'); };",
    });
    writeSkill(fx.skills, "spin", "limits: { timeoutMs: 2000 }\nretry: { attempts: 3 }\n", { "index.js": `export default async () => { ${burn(1500)} return 'done'; };` });
    const host = await fx.open({ workers: 2 });
    let retrying = false;
    const flaky = host.call("flaky", {}, { onProgress: (p) => (retrying ||= p.retryDelayMs > 0) });
    const spinning = host.call("spin", {});
    await waitFor("a retry to be scheduled and the other call to run", () => retrying && host.sandboxStats().busyPids.length >= 1);
    const t0 = performance.now();
    await host.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    for (const r of await Promise.all([flaky, spinning])) {
      expect(!r.ok && r.error.code).toBe("E_CANCELLED");
      expect(r.attempts).toBe(1);
    }
    // close() flushed the log; the host is gone, so read the file itself.
    const events = readEvents(fx.auditFile);
    expect(events.filter((e) => e["event"] === "attempt.start" && e["attempt"] !== 1)).toEqual([]);
    expect(events.filter((e) => e["event"] === "call.end").map((e) => e["code"])).toEqual(["E_CANCELLED", "E_CANCELLED"]);
  });
});
