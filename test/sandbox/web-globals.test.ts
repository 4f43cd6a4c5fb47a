import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture, writeSkill, type Fixture } from "../helpers.js";
import type { SkillHost } from "../../dist/src/index.js";

// What a skill author finds in the isolate: the standard globals that are safe there, a
// Response-like ctx.fetch answer, and console.* landing in the security log.
let fx: Fixture;
let host: SkillHost;
let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("x-trace", "abc");
    res.statusCode = req.url === "/missing" ? 404 : 200;
    res.end(JSON.stringify({ path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  fx = fixture();
  writeSkill(fx.skills, "globals", "", {
    "index.js": `export default async () => {
      const bytes = new TextEncoder().encode("héllo €𝄞");
      const u = new URL("/a/b?x=1&y=two words#frag", "https://example.com:8443/base/");
      u.searchParams.append("z", "3");
      const q = new URLSearchParams({ a: "1 2", b: "&" });
      const r1 = new Uint8Array(32); crypto.getRandomValues(r1);
      const r2 = new Uint8Array(32); crypto.getRandomValues(r2);
      const cloned = structuredClone({ d: new Date(0), m: new Map([[1, { s: new Set([2]) }]]) });
      const t0 = Date.now();
      const order = [];
      await new Promise((resolve) => { setTimeout(() => { order.push("timer"); resolve(); }, 30); queueMicrotask(() => order.push("micro")); });
      let cleared = true;
      const id = setTimeout(() => { cleared = false; }, 1);
      clearTimeout(id);
      await new Promise((resolve) => setTimeout(resolve, 20));
      console.log("hello from", { skill: "globals" }, 42);
      console.error("bad thing");
      let invalid = null;
      try { new URL("not a url"); } catch (e) { invalid = e.name; }
      return {
        bytes: Array.from(bytes),
        decoded: new TextDecoder().decode(bytes),
        href: u.href, host: u.host, port: u.port, pathname: u.pathname, y: u.searchParams.get("y"),
        query: q.toString(),
        b64: btoa("hello"), unb64: atob("aGVsbG8="),
        uuid: crypto.randomUUID(),
        randomDiffers: r1.join() !== r2.join() && r1.some((b) => b !== 0),
        cloned: cloned.d instanceof Date && cloned.m.get(1).s.has(2),
        waitedMs: Date.now() - t0, order, cleared, invalid,
      };
    };`,
  });
  writeSkill(fx.skills, "fetcher", `permissions: { network: [{ host: 127.0.0.1, scheme: http }] }\n`, {
    "index.js": `export default async (input, ctx) => {
      const ok = await ctx.fetch("http://127.0.0.1:${port}/hello");
      const missing = await ctx.fetch("http://127.0.0.1:${port}/missing");
      const seen = [];
      for (const [k, v] of ok.headers) if (k === "x-trace") seen.push(k + "=" + v);
      return {
        ok: ok.ok, status: ok.status, statusText: ok.statusText,
        type: ok.headers.get("Content-Type"), has: ok.headers.has("x-trace"), absent: ok.headers.get("nope"), seen,
        legacyHeader: ok.headers["content-type"],
        text: await ok.text(), json: await ok.json(), legacyText: JSON.parse(ok.text).path,
        missing: { ok: missing.ok, status: missing.status, statusText: missing.statusText },
      };
    };`,
  });
  writeSkill(fx.skills, "abuse", "", {
    "index.js": `export default async () => {
      const out = {};
      try { crypto.getRandomValues(new Uint8Array(70000)); out.big = "filled"; } catch (e) { out.big = e.name; }
      try { crypto.getRandomValues(new Float64Array(4)); out.float = "filled"; } catch (e) { out.float = e.name; }
      try { new URL("https://example.com/" + "a".repeat(200000)); out.longUrl = "parsed"; } catch (e) { out.longUrl = e.name; }
      try { new URL("https://example.com/").protocol = { toString() { throw new Error("hostile"); } }; } catch (e) { out.hostile = e.message; }
      return out;
    };`,
  });
  writeSkill(fx.skills, "sleepy", "limits: { timeoutMs: 300 }\n", {
    "index.js": "export default async () => { await new Promise((r) => setTimeout(r, 60_000)); return 'woke'; };",
  });
  writeFileSync(join(fx.root, "policy.yaml"), "version: 1\ntrust:\n  system:\n    network: [{ host: 127.0.0.1, scheme: http }]\n");
  host = await fx.open({ policy: join(fx.root, "policy.yaml") });
});

afterAll(async () => {
  await host?.close();
  await new Promise((r) => server.close(r));
});

describe("standard globals inside the isolate", () => {
  it("TextEncoder/Decoder, URL, URLSearchParams, atob/btoa, crypto, structuredClone, timers, queueMicrotask", async () => {
    const r = await host.call("globals", {}, { caller: { id: "t", trust: "untrusted" } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    const o = (r as { output: Record<string, unknown> }).output;
    expect(o["bytes"]).toEqual([...Buffer.from("héllo €𝄞")]);
    expect(o["decoded"]).toBe("héllo €𝄞");
    expect(o["href"]).toBe("https://example.com:8443/a/b?x=1&y=two+words&z=3#frag");
    expect(o).toMatchObject({ host: "example.com:8443", port: "8443", pathname: "/a/b", y: "two words", query: "a=1+2&b=%26", b64: "aGVsbG8=", unb64: "hello" });
    expect(o["uuid"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(o).toMatchObject({ randomDiffers: true, cloned: true, order: ["micro", "timer"], cleared: true, invalid: "TypeError" });
    expect(o["waitedMs"]).toBeGreaterThanOrEqual(25);
  });

  it("the host side of crypto and URL is bounded: oversized or hostile arguments fail inside the skill", async () => {
    const r = await host.call("abuse", {}, { caller: { id: "t", trust: "untrusted" } });
    expect((r as { output: unknown }).output).toEqual({ big: "QuotaExceededError", float: "TypeMismatchError", longUrl: "TypeError", hostile: "hostile" });
  });

  it("console.* goes to the security log as skill.log lines", async () => {
    const logs = (await fx.events()).filter((e) => e["event"] === "skill.log" && e["skill"] === "globals");
    expect(logs.map((e) => [e["level"], e["message"]])).toEqual([
      ["info", 'hello from {"skill":"globals"} 42'],
      ["error", "bad thing"],
    ]);
  });

  it("a timer never outlives the attempt: setTimeout past the deadline ends as E_TIMEOUT, on time", async () => {
    const r = await host.call("sleepy", {}, { caller: { id: "t", trust: "untrusted" } });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe("E_TIMEOUT");
    expect(r.durationMs).toBeLessThan(10_000);
  });
});

describe("ctx.fetch answers like fetch's Response", () => {
  it("ok, status, statusText, headers.get/has/iteration, text() and json() as promises; the old fields still read", async () => {
    const r = await host.call("fetcher", {}, { caller: { id: "t", trust: "system" } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect((r as { output: unknown }).output).toEqual({
      ok: true,
      status: 200,
      statusText: "OK",
      type: "application/json",
      has: true,
      absent: null,
      seen: ["x-trace=abc"],
      legacyHeader: "application/json",
      text: '{"path":"/hello"}',
      json: { path: "/hello" },
      legacyText: "/hello",
      missing: { ok: false, status: 404, statusText: "Not Found" },
    });
  });
});
