import { spawn } from "node:child_process";
import { readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectBwrap } from "../../dist/src/capabilities/confine.js";
import type { SkillHost } from "../../dist/src/index.js";
import { bwrapWorker } from "../../dist/src/sandbox/confine-worker.js";
import { fixture, type Fixture, waitFor, writeSkill } from "../helpers.js";

const bwrap = await detectBwrap();
const bwrapPath = bwrap.available ? bwrap.path : "";

/** Runs `script` with node exactly as a confined worker would be started, and returns its stdout. */
function probe(script: string): Promise<{ code: number | null; out: string }> {
  const { command, args } = bwrapWorker(bwrapPath)(process.execPath, ["--no-node-snapshot", "--input-type=module", "-e", script]);
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { PATH: "/usr/bin:/bin" } });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    child.on("close", (code) => resolve({ code, out }));
  });
}

describe.skipIf(!bwrap.available)("sandbox workers run inside bubblewrap where it works", () => {
  let fx: Fixture;
  let host: SkillHost;
  beforeAll(async () => {
    fx = fixture();
    writeFileSync(join(fx.workspace, "secret.txt"), "workspace secret");
    writeSkill(fx.skills, "echo", "", { "index.js": "export default async (i) => ({ echo: i.v });" });
    host = await fx.open();
  });
  afterAll(async () => host.close());

  it("a host's worker has its own network namespace and runs the real node binary", async () => {
    const r = await host.call("echo", { v: 1 });
    expect(r.ok && r.output).toEqual({ echo: 1 });
    // The spare worker may still be starting: wait until every worker's node runs.
    const isNode = (pid: number) => {
      try {
        return realpathSync(`/proc/${pid}/exe`) === realpathSync(process.execPath);
      } catch {
        return false;
      }
    };
    await waitFor("every worker's node to run", () => host.sandboxStats().workerPids.every(isNode));
    const pids = host.sandboxStats().workerPids;
    expect(pids.length).toBeGreaterThanOrEqual(1);
    for (const pid of pids) {
      // The reported pid is node's own (not bwrap's), so CPU watching and kills reach the worker.
      expect(realpathSync(`/proc/${pid}/exe`)).toBe(realpathSync(process.execPath));
      expect(readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(readlinkSync("/proc/self/ns/net"));
      expect(readlinkSync(`/proc/${pid}/ns/user`)).not.toBe(readlinkSync("/proc/self/ns/user"));
      expect(readlinkSync(`/proc/${pid}/ns/pid`)).not.toBe(readlinkSync("/proc/self/ns/pid"));
    }
  });

  it("a confined worker cannot read the workspace, the home folder or the host's /tmp", async () => {
    const secret = join(fx.workspace, "secret.txt");
    const r = await probe(`import { existsSync, readdirSync } from "node:fs";
      let read = "no"; try { (await import("node:fs")).readFileSync(${JSON.stringify(secret)}); read = "yes"; } catch {}
      console.log(JSON.stringify({ read, ws: existsSync(${JSON.stringify(fx.workspace)}), home: existsSync(${JSON.stringify(process.env["HOME"] ?? "/root")}), tmp: readdirSync("/tmp"), uid: process.getuid() }));`);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ read: "no", ws: false, home: false, tmp: [], uid: 65534 });
  });

  it("a confined worker cannot reach a server listening on the host's loopback", async () => {
    const server = createServer((_q, s) => s.end("reached"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const r = await probe(`try { const res = await fetch("http://127.0.0.1:${port}/"); console.log(await res.text()); } catch (e) { console.log("refused:" + (e.cause?.code ?? e.message)); }`);
      expect(r.out.trim()).toBe("refused:ECONNREFUSED");
    } finally {
      server.close();
    }
  });

  it("isolated-vm loads inside the confinement (the worker's imports are all visible)", async () => {
    const iso = new URL("../../dist/src/sandbox/worker/isolate.js", import.meta.url).pathname;
    const r = await probe(`await import(${JSON.stringify(iso)}); console.log("loaded");`);
    expect(r.out.trim()).toBe("loaded");
  });
});
