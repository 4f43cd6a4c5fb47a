import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { parseAddress, isPublicAddress } from "../../dist/src/policy/network.js";
import { fixture, type Fixture, writeSkill } from "../helpers.js";

function listen(handler: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port })));
}

const FETCH = `export default async function (input, ctx) {
  try {
    const r = await ctx.fetch(input.url, input.init ?? {});
    return { status: r.status, text: r.text };
  } catch (err) { return { error: String(err.message) }; }
}`;

describe("small leaks are closed", () => {
  let fx: Fixture;
  let host: SkillHost;
  let front: { server: Server; port: number };
  let other: { server: Server; port: number };
  beforeAll(async () => {
    other = await listen((req, res) => res.end(JSON.stringify(req.headers)));
    front = await listen((req, res) => {
      if (req.url === "/same") res.writeHead(302, { location: "/echo" }).end();
      else if (req.url === "/cross") res.writeHead(302, { location: `http://127.0.0.1:${other.port}/echo` }).end();
      else res.end(JSON.stringify(req.headers));
    });
    fx = fixture();
    const net = `    - { host: "127.0.0.1", port: ${front.port}, scheme: http }\n    - { host: "127.0.0.1", port: ${other.port}, scheme: http }\n`;
    writeFileSync(join(fx.root, "policy.yaml"), `version: 1\ntrust:\n  trusted:\n    network:\n${net.replace(/^ {4}/gm, "      ")}      - { host: "*", scheme: http }\n`);
    writeSkill(fx.skills, "public-only", `permissions:\n  network:\n    - { host: "*", scheme: http }\n`, { "index.js": FETCH });
    writeSkill(fx.skills, "fetcher", `permissions:\n  network:\n${net}`, { "index.js": FETCH });
    writeSkill(fx.skills, "for-system", `permissions:\n  files: [ { path: "\${workspace}/**", access: [write] } ]\n`, { "index.js": "export default async () => 1;" });
    host = await fx.open({ policy: join(fx.root, "policy.yaml"), resolveHost: async (name) => (name === "compat.test" ? ["::7f00:1"] : []) });
  });
  afterAll(async () => {
    await host.close();
    front.server.close();
    other.server.close();
  });
  const headers = { "x-api-key": "k-123", authorization: "Bearer t", accept: "application/json", "x-trace": "1" };

  it("a cross-origin redirect carries only CORS-safelisted headers (no x-api-key)", async () => {
    const r = await host.call("fetcher", { url: `http://127.0.0.1:${front.port}/cross`, init: { headers } }, { caller: { id: "t", trust: "trusted" } });
    const got = JSON.parse((r.ok && (r.output as { text: string }).text) || "{}");
    expect(got["accept"]).toBe("application/json");
    expect(got["x-api-key"]).toBeUndefined();
    expect(got["authorization"]).toBeUndefined();
    expect(got["x-trace"]).toBeUndefined();
  });

  it("a same-origin redirect keeps the headers", async () => {
    const r = await host.call("fetcher", { url: `http://127.0.0.1:${front.port}/same`, init: { headers } }, { caller: { id: "t", trust: "trusted" } });
    const got = JSON.parse((r.ok && (r.output as { text: string }).text) || "{}");
    expect(got["x-api-key"]).toBe("k-123");
  });

  it.each([
    ["::7f00:1", "127.0.0.1"],
    ["[::127.0.0.1]", "127.0.0.1"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::a00:1", "10.0.0.1"],
    ["::ffff:a9fe:a9fe", "169.254.169.254"],
  ])("classifies IPv6 %s by the IPv4 address it carries (%s)", (text, v4) => {
    const a = parseAddress(text);
    expect(a?.toString()).toBe(v4);
    expect(isPublicAddress(a!)).toBe(false);
  });

  it("refuses a name resolving to ::7f00:1 as a private address (it is 127.0.0.1)", async () => {
    const r = await host.call("public-only", { url: `http://compat.test:${front.port}/` }, { caller: { id: "t", trust: "trusted" } });
    expect(!r.ok && r.error.code).toBe("E_PERMISSION_DENIED");
    expect(!r.ok && (r.error.details as { rule: string }).rule).toBe("private-address");
  });

  it("'no such skill' lists only the skills the caller's trust level may run", async () => {
    const low = await host.call("nope", {}, { caller: { id: "t", trust: "untrusted" } });
    expect(!low.ok && low.error.code).toBe("E_SKILL_NOT_FOUND");
    expect(!low.ok && low.error.message).not.toMatch(/for-system|fetcher|public-only/);
    const high = await host.call("nope", {}, { caller: { id: "t", trust: "system" } });
    expect(!high.ok && high.error.message).toMatch(/for-system/);
  });
});
