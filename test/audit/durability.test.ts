import { spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AuditLog, verifyAuditFile } from "../../dist/src/index.js";
import { main } from "../../dist/src/cli/main.js";
import { readEvents, ROOT, tempDir } from "../helpers.js";

const WRITER = join(ROOT, "test", "fixtures", "audit-writer.mjs");
const DIST = join(ROOT, "dist", "src", "index.js");

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => out.push(s) });
  return { code, out: out.join("\n") };
}

function ev(log: AuditLog, i: number, extra: Record<string, unknown> = {}): void {
  log.event("call.start", { callId: `c${i}`, skill: "s", caller: "t", trust: "untrusted", session: null, ...extra });
}

describe("checkpoints and the anchor: the log proves how it ended", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const publicSpki = publicKey.export({ type: "spki", format: "der" }).toString("base64");

  async function sealedLog(events: number): Promise<{ file: string; anchor: string }> {
    const dir = tempDir();
    const file = join(dir, "audit.jsonl");
    const anchor = join(dir, "elsewhere", "audit.anchor");
    mkdirSync(join(dir, "elsewhere"));
    const log = new AuditLog({ file, anchor, signingKeyPem: privatePem, checkpointEveryLines: 10 });
    for (let i = 0; i < events; i++) {
      ev(log, i, i === 20 ? { event: "x", denied: true } : {});
      if (i % 7 === 0) await log.flush();
    }
    await log.close();
    return { file, anchor };
  }

  it("signed checkpoints every N lines and at close; the anchor holds the last head; all verify", async () => {
    const { file, anchor } = await sealedLog(55);
    const events = readEvents(file);
    const checkpoints = events.filter((e) => e["event"] === "log.checkpoint");
    expect(checkpoints.length).toBeGreaterThanOrEqual(4); // at the end of the batch that passes every 10 lines, and at close
    // The tail is sealed: the last line is a checkpoint (the closing one, or the one the last batch crossed N with).
    expect(events.at(-1)).toMatchObject({ event: "log.checkpoint", sig: { alg: "ed25519" } });
    const a = JSON.parse(readFileSync(anchor, "utf8")) as { seq: number };
    expect(a.seq).toBe(events.length);
    const r = await cli(["audit", "verify", "--audit", file, "--anchor", anchor, "--public-key", publicSpki, "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, anchor: { seq: events.length, signature: "valid" }, checkpoints: { count: checkpoints.length, checked: checkpoints.length, linesAfter: 0 } });
  });

  it("a log cut short after a checkpoint is reported truncated, with how many lines are missing", async () => {
    const { file, anchor } = await sealedLog(55);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    writeFileSync(file, lines.slice(0, -7).join("\n") + "\n"); // the last call(s) and the closing checkpoint gone
    expect(verifyAuditFile(file, { key: undefined }).ok).toBe(true); // the chain alone cannot tell
    const r = await cli(["audit", "verify", "--audit", file, "--anchor", anchor, "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, reason: "truncated", missingLines: 7 });
    expect((await cli(["audit", "verify", "--audit", file, "--anchor", anchor])).out).toMatch(/truncated: .*7 line\(s\) missing at the end/);
  });

  it("a line removed and the unkeyed chain recomputed: the signed checkpoints and the anchor both catch it", async () => {
    const { file, anchor } = await sealedLog(55);
    const { createHash } = await import("node:crypto");
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    const kept = lines.filter((l) => !l.includes('"denied":true'));
    expect(kept.length).toBe(lines.length - 1);
    // The forger renumbers and rehashes every line (no key is needed for a plain SHA-256 chain).
    let prev = "0".repeat(64);
    const forged = kept.map((l, i) => {
      const body = l.replace(/^\{"seq":\d+,"prev":"[0-9a-f]{64}",/, "");
      let line = `{"seq":${i + 1},"prev":"${prev}",${body}`;
      const hashOfPrev = prev;
      if (line.includes('"event":"log.checkpoint"')) line = line.replace(/"head":\{"seq":\d+,"hash":"[0-9a-f]{64}"\}/, `"head":{"seq":${i},"hash":"${hashOfPrev}"}`);
      prev = createHash("sha256").update(line).digest("hex");
      return line;
    });
    writeFileSync(file, forged.join("\n") + "\n");
    expect(verifyAuditFile(file, {}).ok).toBe(true); // what an unkeyed chain alone cannot prove
    const withKey = JSON.parse((await cli(["audit", "verify", "--audit", file, "--public-key", publicSpki, "--json"])).out);
    expect(withKey).toMatchObject({ ok: false, reason: "bad-checkpoint" });
    const withAnchor = JSON.parse((await cli(["audit", "verify", "--audit", file, "--anchor", anchor, "--json"])).out);
    expect(withAnchor).toMatchObject({ ok: false });
    expect(["truncated", "anchor-mismatch"]).toContain(withAnchor.reason);
  });

  it("verify finds the anchor the policy names (--policy), without --anchor", async () => {
    const { file, anchor } = await sealedLog(25);
    const policy = join(tempDir(), "policy.yaml");
    writeFileSync(policy, `version: 1\naudit: { anchor: ${JSON.stringify(anchor)} }\n`);
    expect((await cli(["audit", "verify", "--audit", file, "--policy", policy])).code).toBe(0);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    writeFileSync(file, lines.slice(0, -2).join("\n") + "\n");
    const r = JSON.parse((await cli(["audit", "verify", "--audit", file, "--policy", policy, "--json"])).out);
    expect(r).toMatchObject({ ok: false, reason: "truncated", missingLines: 2 });
  });

  it("an anchor whose head does not match the log is a mismatch", async () => {
    const { file, anchor } = await sealedLog(30);
    const a = JSON.parse(readFileSync(anchor, "utf8")) as Record<string, unknown>;
    writeFileSync(anchor, JSON.stringify({ ...a, hash: "f".repeat(64), sig: null }));
    const r = JSON.parse((await cli(["audit", "verify", "--audit", file, "--anchor", anchor, "--json"])).out);
    expect(r).toMatchObject({ ok: false, reason: "anchor-mismatch" });
    writeFileSync(anchor, JSON.stringify({ ...a, seq: 3 })); // rolled back, signature kept
    const r2 = JSON.parse((await cli(["audit", "verify", "--audit", file, "--anchor", anchor, "--public-key", publicSpki, "--json"])).out);
    expect(r2).toMatchObject({ ok: false, reason: "anchor-mismatch" });
  });
});

describe("a full disk mid-run, then freed", () => {
  const mnt = tempDir("skillbox-tmpfs-");
  let mounted = false;
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=192k", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status === 0) mounted = true;
  else console.warn(`SKIPPED the full-disk test: cannot mount a tmpfs here (${(m.stderr || m.error?.message || "").trim()}); it needs root`);
  afterAll(() => {
    if (mounted) spawnSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it.skipIf(!mounted)("loses events only with a trace: a log.gap with the count, one warning each way, a clean chain", async () => {
    const file = join(mnt, "audit.jsonl");
    const warnings: string[] = [];
    const log = new AuditLog({ file, onError: (w) => warnings.push(w) });
    for (let i = 0; i < 20; i++) ev(log, i);
    await log.flush();
    // Fill the disk to the last byte.
    const filler = join(mnt, "filler");
    const fd = openSync(filler, "w");
    const chunk = Buffer.alloc(4096, 120);
    try {
      for (;;) writeSync(fd, chunk);
    } catch {
      /* ENOSPC */
    }
    try {
      for (;;) writeSync(fd, chunk, 0, 1);
    } catch {
      /* really full */
    } finally {
      closeSync(fd);
    }
    for (let i = 20; i < 220; i++) ev(log, i);
    await log.flush();
    expect(log.healthy).toBe(false);
    const lostWhileFull = log.failures;
    expect(lostWhileFull).toBeGreaterThan(0);
    unlinkSync(filler);
    for (let i = 220; i < 230; i++) ev(log, i);
    await log.close();
    const events = readEvents(file);
    const gaps = events.filter((e) => e["event"] === "log.gap");
    if (gaps.length !== 1) console.log(warnings, lostWhileFull, events.slice(-15));
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ lost: lostWhileFull, reason: "ENOSPC" });
    const written = events.filter((e) => e["event"] === "call.start").length;
    expect(written + lostWhileFull).toBe(230); // every event is in the file or counted in the gap
    const r = verifyAuditFile(file, {});
    expect(r).toMatchObject({ ok: true, lostEvents: lostWhileFull });
    expect(r.tornLines).toBeUndefined(); // a batch that half fit was cut back to its last whole line
    expect(warnings.filter((w) => /cannot write the security log .*disk is full/.test(w))).toHaveLength(1);
    expect(warnings.filter((w) => /writable again; \d+ event\(s\) .* recorded as a log.gap/.test(w))).toHaveLength(1);
  });
});

describe("the writer lock", () => {
  function runWriter(file: string, events: number): Promise<number> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["--no-node-snapshot", WRITER, DIST, "-", file, String(events), "events"], { stdio: ["ignore", "inherit", "inherit"] });
      child.on("exit", (code) => resolve(code ?? 1));
    });
  }

  it("four writers racing for a stale lock (its owner died) keep one chain", async () => {
    for (let trial = 0; trial < 2; trial++) {
      const dir = tempDir();
      const file = join(dir, "audit.jsonl");
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
      writeFileSync(`${file}.lck`, `${dead} ${hostname()}\n`);
      const codes = await Promise.all([0, 1, 2, 3].map(() => runWriter(file, 200)));
      expect(codes).toEqual([0, 0, 0, 0]);
      const events = readEvents(file);
      const starts = events.filter((e) => e["event"] === "call.start");
      expect(starts).toHaveLength(800);
      expect(new Set(events.map((e) => e["seq"])).size).toBe(events.length);
      expect(verifyAuditFile(file, {})).toMatchObject({ ok: true, lines: events.length });
      expect(existsSync(`${file}.lck`)).toBe(false);
    }
  }, 120_000);
});
