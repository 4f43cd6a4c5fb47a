import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, waitFor, writeSkill } from "../helpers.js";

describe("retry with backoff, and fallback", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    const add = (name: string, manifest: string, src: string) => writeSkill(fx.skills, name, manifest, { "index.js": src });
    add(
      "flaky",
      "retry: { attempts: 4, initialDelayMs: 20, factor: 2, maxDelayMs: 1000, jitter: false }\n",
      "export default async (i, ctx) => { if (ctx.attempt < 3) throw new ctx.RetryableError('busy ' + ctx.attempt); return { attempt: ctx.attempt }; };",
    );
    add("capped", "retry: { attempts: 4, initialDelayMs: 30, factor: 10, maxDelayMs: 50, jitter: false }\n", "export default async (i, ctx) => { throw new ctx.RetryableError('always busy'); };");
    add("plain-error", "retry: { attempts: 3, initialDelayMs: 1 }\n", "export default async () => { throw new TypeError('bug'); };");
    add("slow", "retry: { attempts: 2, initialDelayMs: 1 }\nlimits: { timeoutMs: 150 }\n", "export default async () => new Promise(() => {});");
    add("hog", "retry: { attempts: 3, initialDelayMs: 1 }\nlimits: { memoryMb: 16 }\n", "export default async () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };");
    add("with-fallback", "retry: { attempts: 2, initialDelayMs: 1 }\nfallback: { skill: backup }\n", "export default async (i, ctx) => { throw new ctx.RetryableError('down'); };");
    add("backup", "input: { type: object, properties: { q: { type: string } } }\n", "export default async (i) => ({ from: 'backup', q: i.q ?? null });");
    add(
      "denied-with-fallback",
      'permissions: { files: [{ path: "${workspace}/**", access: [read] }] }\nfallback: { skill: backup }\n',
      "export default async (i, ctx) => ctx.fs.readFile('/etc/passwd');",
    );
    add("typed-with-fallback", "input: { type: object, properties: { q: { type: string } }, required: [q] }\nfallback: { skill: backup }\n", "export default async () => { throw new Error('x'); };");
    add("fallback-needs-more", "fallback: { skill: reader }\n", "export default async () => { throw new Error('primary failed'); };");
    add("reader", 'permissions: { files: [{ path: "${workspace}/**", access: [read] }] }\n', "export default async () => 'read';");
    add("bad-output-fallback", "output: { type: object, required: [x] }\nfallback: { skill: backup }\n", "export default async () => ({ y: 1 });");
    add(
      "waits",
      "limits: { timeoutMs: 2000 }\nretry: { attempts: 2, initialDelayMs: 1 }\n",
      "export default async (i, ctx) => { if (ctx.attempt === 1) await new Promise(() => {}); return { attempt: ctx.attempt }; };",
    );
    host = await fx.open();
  });
  afterAll(async () => host.close());

  const callEvents = async (callId: string) => (await fx.events()).filter((e) => e["callId"] === callId);

  it("retries a retryable failure with exponential backoff and counts the attempts", async () => {
    const r = await host.call("flaky", {});
    expect(r.ok && r.output).toEqual({ attempt: 3 });
    expect(r.attempts).toBe(3);
    const delays = (await callEvents(r.callId)).filter((e) => e["event"] === "attempt.end" && e["outcome"] === "error").map((e) => e["retryDelayMs"]);
    expect(delays).toEqual([20, 40]);
  });

  it("caps the backoff at maxDelayMs and stops after `attempts`", async () => {
    const r = await host.call("capped", {});
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(4);
    const delays = (await callEvents(r.callId)).filter((e) => e["event"] === "attempt.end").map((e) => e["retryDelayMs"]);
    expect(delays).toEqual([30, 50, 50, 0]);
  });

  it("does not retry a plain error", async () => {
    const r = await host.call("plain-error", {});
    expect(!r.ok && r.error).toMatchObject({ code: "E_SKILL_ERROR", retryable: false });
    expect(r.attempts).toBe(1);
  });

  it("retries timeouts", async () => {
    const r = await host.call("slow", {});
    expect(!r.ok && r.error.code).toBe("E_TIMEOUT");
    expect(r.attempts).toBe(2);
  });

  it("does not retry memory overruns", async () => {
    const r = await host.call("hog", {});
    expect(!r.ok && r.error.code).toBe("E_MEMORY_LIMIT");
    expect(r.attempts).toBe(1);
  });

  it("runs the fallback skill when retries are spent, and says so", async () => {
    const r = await host.call("with-fallback", { q: "hi" }, { caller: { id: "c", trust: "untrusted", session: "s1" } });
    expect(r.ok && r.output).toEqual({ from: "backup", q: "hi" });
    expect(r.attempts).toBe(2);
    expect(r.fallback).toBe("backup");
    const events = await fx.events();
    const fb = events.find((e) => e["event"] === "fallback.start" && e["callId"] === r.callId);
    expect(fb).toMatchObject({ fallback: "backup", after: "E_SKILL_ERROR", session: "s1" });
    // The fallback is a call of its own, linked to its parent and under the same caller.
    expect(events.find((e) => e["event"] === "call.end" && e["parentCallId"] === r.callId)).toMatchObject({ skill: "backup", caller: "c", outcome: "ok" });
  });

  it("runs the fallback after invalid output", async () => {
    const r = await host.call("bad-output-fallback", {});
    expect(r.ok && r.fallback).toBe("backup");
  });

  it("never runs the fallback after a denial", async () => {
    const r = await host.call("denied-with-fallback", {}, { caller: { id: "c", trust: "user-verified" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(r.fallback).toBeNull();
    const r2 = await host.call("denied-with-fallback", {}, { caller: { id: "c", trust: "untrusted" } });
    expect(!r2.ok && r2.error.code).toBe("E_PERMISSION_DENIED");
    expect(r2.attempts).toBe(0);
    expect(r2.fallback).toBeNull();
  });

  it("never runs the fallback after invalid input", async () => {
    const r = await host.call("typed-with-fallback", { q: 1 });
    expect(!r.ok && r.error.code).toBe("E_INPUT_INVALID");
    expect(r.fallback).toBeNull();
  });

  it("checks the fallback's own permissions for the same caller", async () => {
    const r = await host.call("fallback-needs-more", {}, { caller: { id: "c", trust: "untrusted" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(r.fallback).toBe("reader");
    const ok = await host.call("fallback-needs-more", {}, { caller: { id: "c", trust: "user-verified" } });
    expect(ok.ok && ok.output).toBe("read");
  });

  it("a worker killed mid-call is reported and the attempt retried on a fresh worker", async () => {
    const pending = host.call("waits", {});
    await waitFor("the call to be running in a worker", () => host.sandboxStats().busyPids.length >= 1);
    const [pid] = host.sandboxStats().busyPids;
    process.kill(pid!, "SIGKILL");
    const r = await pending;
    expect(r.ok && r.output).toEqual({ attempt: 2 });
    const first = (await callEvents(r.callId)).find((e) => e["event"] === "attempt.end" && e["attempt"] === 1);
    expect(first).toMatchObject({ code: "E_SKILL_ERROR", retryable: true });
    expect(String(first?.["message"])).toMatch(/worker process ended/);
    expect(host.sandboxStats().workerPids).not.toContain(pid);
  });
});

describe("concurrency: maxConcurrent with a queue", () => {
  it("queues calls past maxConcurrent and refuses with E_RATE_LIMITED when the queue is full", async () => {
    const fx = fixture();
    writeSkill(fx.skills, "slow", "", { "index.js": "export default async () => { const t = Date.now(); while (Date.now() - t < 150) {} return 'done'; };" });
    writeSkill(fx.skills, "primary", "fallback: { skill: slow }\n", { "index.js": "export default async () => { throw new Error('x'); };" });
    const host = await fx.open({ maxConcurrent: 1, maxQueued: 1 });
    const [a, b, c] = await Promise.all([host.call("slow", {}), host.call("slow", {}), host.call("slow", {})]);
    expect(a.ok && b.ok).toBe(true);
    expect(!c.ok && c.error).toMatchObject({ code: "E_RATE_LIMITED", details: { retryAfterMs: 100, reason: "busy" } });
    // A fallback skill runs outside its parent's slot: no deadlock at maxConcurrent 1.
    const f = await host.call("primary", {});
    expect(f.ok && f.fallback).toBe("slow");
    await host.close();
  });
});
