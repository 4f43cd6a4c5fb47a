import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parsePolicy, type SkillHost } from "../../dist/src/index.js";
import { applyFilters, applyRequestFilters, compileFilters, DEPTH_FILTER } from "../../dist/src/policy/engine/filters.js";
import { fixture, writeSkill } from "../helpers.js";

const block = compileFilters([], [{ name: "no-secret", terms: ["TOP SECRET"], on: ["request", "input", "output"], action: "block" }]);
const redact = compileFilters([], [{ name: "mask", pattern: "/k-\\d{4}/", on: ["request"], action: "redact" }]);

function nested(levels: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

describe("request filters see what the server will decode, not only the raw bytes", () => {
  it.each([
    ["a JSON body with \\u-escaped text", { url: "http://127.0.0.1/", headers: { "content-type": "application/json" }, body: '{"note":"\\u0054OP \\u0053ECRET"}' }, "body"],
    ["a JSON body with an escaped key", { url: "http://127.0.0.1/", headers: {}, body: '{"TOP\\u0020SECRET":1}' }, "body"],
    ["a form body, percent-encoded", { url: "http://127.0.0.1/", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "q=TOP%20SECRET" }, "body"],
    ["the URL's query, percent-encoded", { url: "http://127.0.0.1/search?q=TOP%20SECRET", headers: {} }, "url"],
    ["the URL's query, plus-encoded", { url: "http://127.0.0.1/search?q=TOP+SECRET", headers: {} }, "url"],
    ["the URL's path, percent-encoded", { url: "http://127.0.0.1/TOP%20SECRET/x", headers: {} }, "url"],
    ["a header value", { url: "http://127.0.0.1/", headers: { "x-note": "top secret" } }, "header"],
    ["a header value, percent-encoded", { url: "http://127.0.0.1/", headers: { cookie: "n=TOP%20SECRET" } }, "header"],
    ["the raw body", { url: "http://127.0.0.1/", headers: {}, body: "plain TOP SECRET text" }, "body"],
  ])("%s is blocked", (_what, request, where) => {
    const r = applyRequestFilters(block, request);
    expect(r.blocked).toBe("no-secret");
    expect(r.where).toBe(where);
  });

  it("lets a clean request through unchanged", () => {
    const request = { url: "http://127.0.0.1/a?b=c", headers: { "x-a": "b" }, body: '{"x":"\\u0041"}' };
    const r = applyRequestFilters(block, request);
    expect(r.blocked).toBeUndefined();
    expect(r.request).toEqual(request);
  });

  it("redacts in the decoded JSON body and query, re-encoded", () => {
    const r = applyRequestFilters(redact, { url: "http://127.0.0.1/p?key=k%2D1234&x=1", headers: { "x-key": "k-5678" }, body: '{"key":"k\\u002D9999"}' });
    expect(r.blocked).toBeUndefined();
    expect(JSON.parse(r.request.body!)).toEqual({ key: "[redacted:mask]" });
    expect(new URL(r.request.url).searchParams.get("key")).toBe("[redacted:mask]");
    expect(r.request.headers["x-key"]).toBe("[redacted:mask]");
  });

  it("blocks encoded text it must mask but cannot re-encode (an undeclared form body)", () => {
    const r = applyRequestFilters(redact, { url: "http://127.0.0.1/", headers: { "content-type": "text/plain" }, body: "key=k%2D1234" });
    expect(r.blocked).toBe("mask");
  });
});

describe("filters are bounded: depth and time", () => {
  it("a value nested 3500 levels deep is blocked, not a stack overflow", () => {
    const r = applyFilters(block, "input", nested(3500, "x"));
    expect(r.blocked).toBe(DEPTH_FILTER);
    const req = applyRequestFilters(block, { url: "http://127.0.0.1/", headers: {}, body: "[".repeat(3500) + "]".repeat(3500) });
    expect(req.blocked).toBe(DEPTH_FILTER);
  });

  it("a catastrophic policy pattern runs in linear time", () => {
    const filters = compileFilters([], [{ name: "evil", pattern: "/^(a+)+$/", on: ["input"], action: "block" }]);
    const started = performance.now();
    expect(applyFilters(filters, "input", { t: "a".repeat(200_000) + "!" }).blocked).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it.each([
    ["/([/", /invalid regular expression/],
    ["/(a)\\\\1/", /backreferences/],
    ["/a(?=b)/", /lookahead/],
    ["no-slashes", /\/regex\//],
  ])("policy pattern %s is refused at load with field and line", (pattern, message) => {
    let err: { code?: string; issues?: { field: string; line?: number; message: string }[] } = {};
    try {
      parsePolicy(`version: 1\nfilters:\n  rules:\n    - name: f\n      pattern: "${pattern}"\n`, "/etc/skillbox/policy.yaml");
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe("E_POLICY_INVALID");
    const issue = err.issues!.find((i) => i.field.endsWith("pattern"))!;
    expect(issue).toMatchObject({ field: "filters.rules[0].pattern", line: 5 });
    expect(issue.message).toMatch(message);
  });
});

describe("a skill cannot carry blocked text out through ctx.fetch in an encoding", () => {
  let host: SkillHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it("JSON-escaped body, query and header each refused; nothing reaches the server", async () => {
    const fx = fixture();
    const seen: string[] = [];
    const server = createServer((q, s) => {
      seen.push(q.url ?? "");
      s.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      writeSkill(fx.skills, "leaker", `permissions: { network: [{ host: "127.0.0.1", scheme: http }] }\n`, {
        "index.js": `export default async (i, ctx) => (await ctx.fetch("http://127.0.0.1:${port}" + i.path, i.init)).text;`,
      });
      const policy = join(fx.root, "policy.yaml");
      writeFileSync(
        policy,
        `version: 1\ntrust:\n  trusted: { network: [{ host: "127.0.0.1", scheme: http }] }\nfilters:\n  rules:\n    - { name: no-secret, terms: [TOP SECRET], on: [request], action: block }\n`,
      );
      host = await fx.open({ policy });
      const caller = { caller: { id: "t", trust: "trusted" as const } };
      const attacks = [
        { path: "/", init: { method: "POST", headers: { "content-type": "application/json" }, body: '{"n":"\\u0054OP SECRET"}' } },
        { path: "/?q=TOP%20SECRET", init: {} },
        { path: "/", init: { headers: { "x-note": "top secret" } } },
      ];
      for (const input of attacks) {
        const r = await host.call("leaker", input, caller);
        expect(!r.ok && r.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { rule: "filters.no-secret" } });
      }
      const clean = await host.call("leaker", { path: "/?q=weather", init: {} }, caller);
      expect(clean.ok && clean.output).toBe("ok");
      expect(seen).toEqual(["/?q=weather"]);
      const denials = (await fx.events()).filter((e) => e["event"] === "capability" && e["decision"] === "deny");
      expect(denials.map((e) => e["reason"])).toEqual([
        'the request body was blocked by content filter "no-secret"',
        'the request url was blocked by content filter "no-secret"',
        'the request header was blocked by content filter "no-secret"',
      ]);
    } finally {
      server.close();
    }
  });
});
