import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

function serve(
  handler: (path: string) => { status: number; headers?: Record<string, string>; body: string },
  address = "127.0.0.1",
  port = 0,
): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? ""}`);
    const r = handler(req.url ?? "/");
    res.writeHead(r.status, r.headers ?? {});
    res.end(r.body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve({ server, port: (server.address() as AddressInfo).port, hits }));
  });
}

const PROBE = `export default async function (input, ctx) {
  try {
    const r = await ctx.fetch(input.url, input.init);
    return { status: r.status, text: r.text, redirects: r.redirects, json: input.json ? await r.json() : null };
  } catch (err) {
    if (input.swallow) return { swallowed: String(err.message), code: err.code ?? null };
    throw err;
  }
}`;

describe("ctx.fetch holds against SSRF, rebinding and redirect attacks", () => {
  let fx: Fixture;
  let host: SkillHost;
  let internal: Awaited<ReturnType<typeof serve>>;
  let front: Awaited<ReturnType<typeof serve>>;
  // Stands for the address a rebinding name resolves to first: 127.0.0.2, on internal's port (Linux routes all of 127/8 to lo).
  let checked: Awaited<ReturnType<typeof serve>>;
  const resolveCalls: string[] = [];
  let flip = 0;

  beforeAll(async () => {
    internal = await serve(() => ({ status: 200, body: "internal secret" }));
    checked = await serve(() => ({ status: 200, body: "checked address" }), "127.0.0.2", internal.port);
    front = await serve((path) => {
      if (path === "/to-internal") return { status: 302, headers: { location: `http://127.0.0.1:${internal.port}/` }, body: "" };
      if (path === "/to-localhost") return { status: 301, headers: { location: `http://localhost:${front.port}/ok` }, body: "" };
      if (path === "/to-self") return { status: 307, headers: { location: `/ok` }, body: "" };
      if (path === "/loop") return { status: 302, headers: { location: `/loop` }, body: "" };
      if (path === "/big") return { status: 200, body: "x".repeat(6 * 1024 * 1024) };
      return { status: 200, headers: { "content-type": "application/json" }, body: '{"hello":"front"}' };
    });
    fx = fixture();
    writeFileSync(
      join(fx.root, "policy.yaml"),
      `version: 1\ntrust:\n  trusted:\n    network:\n      - { host: "*", scheme: http }\n      - { host: "*" }\n      - { host: "127.0.0.1", port: ${front.port}, scheme: http }\n      - { host: "127.0.0.2", scheme: http }\n`,
    );
    // Any public host over http, plus one named local service.
    writeSkill(fx.skills, "probe", `permissions:\n  network:\n    - { host: "*", scheme: http }\nretry: { attempts: 3, initialDelayMs: 1 }\nlimits: { timeoutMs: 2000 }\n`, { "index.js": PROBE });
    // Any host, and one private address named explicitly: the only way a name may lead off the public internet.
    writeSkill(fx.skills, "rebinder", `permissions:\n  network:\n    - { host: "*", scheme: http }\n    - { host: "127.0.0.2", scheme: http }\nlimits: { timeoutMs: 5000 }\n`, { "index.js": PROBE });
    writeSkill(fx.skills, "local", `permissions:\n  network:\n    - { host: "127.0.0.1", port: ${front.port}, scheme: http }\n`, { "index.js": PROBE });
    host = await fx.open({
      policy: join(fx.root, "policy.yaml"),
      resolveHost: async (name) => {
        resolveCalls.push(name);
        if (name === "internal.test") return ["127.0.0.1"];
        if (name === "mixed.test") return ["127.0.0.2", "127.0.0.1"];
        if (name === "metadata.test") return ["169.254.169.254"];
        if (name === "mapped.test") return ["::ffff:127.0.0.1"];
        // DNS rebinding: an allowed address on the first lookup, a forbidden one on any later one.
        if (name === "rebind.test") return flip++ === 0 ? ["127.0.0.2"] : ["127.0.0.1"];
        throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
      },
    });
  });
  afterAll(async () => {
    await host.close();
    internal.server.close();
    front.server.close();
    checked.server.close();
  });

  const call = (skill: string, input: Record<string, unknown>) => host.call(skill, { swallow: true, ...input }, { caller: { id: "t", trust: "trusted" } });

  it("reaches a local service when a rule names its address", async () => {
    const r = await call("local", { url: `http://127.0.0.1:${front.port}/ok`, json: true });
    expect(r.ok && r.output).toMatchObject({ status: 200, json: { hello: "front" } });
  });

  it.each([
    ["localhost", (p: number) => `http://localhost:${p}/`, "private-address"],
    ["127.1", (p: number) => `http://127.1:${p}/`, "manifest"],
    ["decimal 2130706433", (p: number) => `http://2130706433:${p}/`, "manifest"],
    ["hex 0x7f000001", (p: number) => `http://0x7f000001:${p}/`, "manifest"],
    ["octal 0177.0.0.1", (p: number) => `http://0177.0.0.1:${p}/`, "manifest"],
    ["IPv4-mapped [::ffff:127.0.0.1]", (p: number) => `http://[::ffff:127.0.0.1]:${p}/`, "manifest"],
    ["[::1]", (p: number) => `http://[::1]:${p}/`, "manifest"],
    ["0.0.0.0", (p: number) => `http://0.0.0.0:${p}/`, "manifest"],
    ["a name resolving to 127.0.0.1", (p: number) => `http://internal.test:${p}/`, "private-address"],
    ["a name resolving to an IPv4-mapped loopback", (p: number) => `http://mapped.test:${p}/`, "private-address"],
    ["a name resolving to the metadata address", () => "http://metadata.test/latest/meta-data/", "deny:169.254.169.254"],
    ["the metadata address itself", () => "http://169.254.169.254/latest/meta-data/", "deny:169.254.169.254"],
    ["user info allowed.com@127.0.0.1", (p: number) => `http://allowed.com@127.0.0.1:${p}/`, "userinfo"],
    ["a file: URL", () => "file:///etc/passwd", "scheme"],
  ])("refuses %s", async (_what, url, rule) => {
    const before = internal.hits.length + front.hits.length + checked.hits.length;
    const r = await call("probe", { url: url(internal.port) });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe("E_PERMISSION_DENIED");
    expect((r.error.details as { rule: string }).rule).toBe(rule);
    expect(internal.hits.length + front.hits.length + checked.hits.length).toBe(before);
  });

  it("refuses a name with one allowed and one forbidden address (every address is checked)", async () => {
    const before = internal.hits.length + checked.hits.length;
    const r = await call("rebinder", { url: `http://mixed.test:${internal.port}/` });
    expect(!r.ok && r.error).toMatchObject({ code: "E_PERMISSION_DENIED", details: { rule: "private-address" } });
    expect(internal.hits.length + checked.hits.length).toBe(before);
  });

  it("refuses a redirect from an allowed host to an internal one (each hop checked)", async () => {
    const r = await call("local", { url: `http://127.0.0.1:${front.port}/to-internal` });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(internal.hits).toEqual([]);
    const r2 = await call("local", { url: `http://127.0.0.1:${front.port}/to-localhost` });
    expect(!r2.ok && r2.error.code).toBe("E_PERMISSION_DENIED");
  });

  it("follows allowed redirects itself, at most 5", async () => {
    const ok = await call("local", { url: `http://127.0.0.1:${front.port}/to-self` });
    expect(ok.ok && ok.output).toMatchObject({ status: 200, redirects: 1 });
    const loop = await call("local", { url: `http://127.0.0.1:${front.port}/loop` });
    expect(loop.ok && loop.output).toMatchObject({ swallowed: expect.stringMatching(/more than 5 redirects/) });
  });

  it("DNS is resolved once and the connection goes to the checked address (rebinding fails)", async () => {
    const before = resolveCalls.filter((n) => n === "rebind.test").length;
    const internalBefore = internal.hits.length;
    const r = await call("rebinder", { url: `http://rebind.test:${internal.port}/` });
    expect(r.ok && r.output).toMatchObject({ status: 200, text: "checked address" });
    expect(resolveCalls.filter((n) => n === "rebind.test").length - before).toBe(1);
    expect(checked.hits).toHaveLength(1);
    expect(internal.hits.length).toBe(internalBefore);
  });

  it("network failures are retryable errors, retried by the retry policy", async () => {
    const r = await host.call("probe", { url: "http://no-such-host.test/" }, { caller: { id: "t", trust: "trusted" } });
    expect(!r.ok && r.error).toMatchObject({ code: "E_SKILL_ERROR", retryable: true });
    expect(r.attempts).toBe(3);
  });

  it("caps the response size", async () => {
    const r = await call("local", { url: `http://127.0.0.1:${front.port}/big` });
    expect(r.ok && r.output).toMatchObject({ swallowed: expect.stringMatching(/larger than/) });
  });

  it("refuses at a trust level whose ceiling lacks the rule, before anything runs", async () => {
    const r = await host.call("local", { url: `http://127.0.0.1:${front.port}/ok` }, { caller: { id: "t", trust: "user-verified" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(r.attempts).toBe(0);
  });

  it("logs each request with the checked address; credentials and query values never reach the log", async () => {
    await call("local", { url: `http://127.0.0.1:${front.port}/ok?token=s3cr3t`, init: { headers: { Authorization: "Bearer abc123" } } });
    const events = await fx.events();
    const text = JSON.stringify(events);
    expect(text).not.toMatch(/s3cr3t|abc123/);
    expect(events.find((e) => e["op"] === "fetch" && e["decision"] === "allow" && String(e["target"]).includes("token="))).toMatchObject({
      address: "127.0.0.1",
      target: `http://127.0.0.1:${front.port}/ok?token=[redacted]`,
    });
    expect(front.hits.some((h) => h.includes("auth=Bearer abc123"))).toBe(true);
  });
});
