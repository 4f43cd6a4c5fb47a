import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bwrapArgs, detectBwrap } from "../../dist/src/capabilities/confine.js";
import { tempDir } from "../helpers.js";

const status = await detectBwrap();
const bwrapPath = status.available ? status.path : "";

/** Runs `sh -c script` confined; resolves with exit code and output once the pipes close. */
function runConfined(spec: Parameters<typeof bwrapArgs>[0], script: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bwrapPath, [...bwrapArgs(spec), "--", "sh", "-c", script], { env: { PATH: "/usr/bin:/bin" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

describe("bwrap detection", () => {
  it("reports absence when bwrap is not on the PATH", async () => {
    const s = await detectBwrap({ PATH: "/nonexistent-bin" });
    expect(s).toEqual({ available: false, reason: expect.stringContaining("not found") });
  });
  it("reports a bwrap that cannot set up namespaces as unavailable", async () => {
    const s = await detectBwrap({ bwrapPath: "/bin/false" });
    expect(s.available).toBe(false);
  });
});

describe("bwrap arguments", () => {
  it("unshares the network unless asked, and applies binds shortest first, then read-only overrides, then masks", () => {
    const a = bwrapArgs({
      binds: [
        { path: "/w/out", write: true },
        { path: "/w", write: false },
      ],
      readOnly: ["/w/out/.git/hooks"],
      masks: [{ path: "/w/.env", kind: "file" }],
      network: false,
      cwd: "/w",
    });
    expect(a).toContain("--unshare-net");
    expect(a).toContain("--die-with-parent");
    expect(a).toContain("--new-session");
    const i = (flag: string, path: string) => a.findIndex((x, k) => x === flag && a[k + 1] === path);
    expect(i("--ro-bind", "/w")).toBeLessThan(i("--bind", "/w/out"));
    expect(i("--bind", "/w/out")).toBeLessThan(i("--ro-bind", "/w/out/.git/hooks"));
    expect(i("--ro-bind", "/w/out/.git/hooks")).toBeLessThan(a.indexOf("/w/.env"));
    expect(bwrapArgs({ binds: [], network: true, cwd: "/" })).not.toContain("--unshare-net");
  });
});

describe.skipIf(!status.available)("a confined process", () => {
  let root: string;
  let server: Server;
  let port = 0;
  beforeAll(async () => {
    root = tempDir();
    mkdirSync(join(root, "granted"));
    mkdirSync(join(root, "secret"));
    writeFileSync(join(root, "granted", "a.txt"), "visible");
    writeFileSync(join(root, "granted", ".env"), "TOKEN=leak");
    writeFileSync(join(root, "secret", "b.txt"), "hidden");
    server = createServer((s) => s.end("reached"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("sees only what is bound: no sibling folders, masked files empty of content, read-only binds unwritable", async () => {
    const r = await runConfined(
      { binds: [{ path: join(root, "granted"), write: false }], masks: [{ path: join(root, "granted", ".env"), kind: "file" }], network: false, cwd: join(root, "granted") },
      `cat a.txt; echo; cat ${root}/secret/b.txt 2>/dev/null || echo NO-SECRET; cat .env 2>/dev/null | grep -q leak && echo LEAK; touch new 2>/dev/null || echo NO-WRITE; ls /home /root /work 2>/dev/null || echo NO-HOST`,
    );
    expect(r.stdout).toContain("visible");
    expect(r.stdout).toContain("NO-SECRET");
    expect(r.stdout).not.toContain("LEAK");
    expect(r.stdout).toContain("NO-WRITE");
    expect(r.stdout).toContain("NO-HOST");
  });

  it("cannot connect to a server on the host's loopback without network", async () => {
    const script = `exec 3<>/dev/tcp/127.0.0.1/${port} && cat <&3 || echo NO-NET`;
    const r = await runConfined({ binds: [], network: false, cwd: "/" }, `bash -c '${script}' 2>/dev/null || echo NO-NET`);
    expect(r.stdout).not.toContain("reached");
    expect(r.stdout).toContain("NO-NET");
    // the same script with the network shared does reach it: the refusal above is the namespace
    const open = await runConfined({ binds: [], network: true, cwd: "/" }, `bash -c '${script}'`);
    expect(open.stdout).toContain("reached");
  });

  it("takes a setsid grandchild holding stdout down with it", async () => {
    const r = await runConfined({ binds: [], network: false, cwd: "/" }, "setsid sleep 30 & echo started");
    expect(r.stdout).toContain("started");
    expect(r.ms).toBeLessThan(20_000);
  });
});
