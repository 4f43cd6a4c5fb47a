/**
 * What the shared state store adds to an admitted call: the policy engine's admission (a
 * concurrency lease and a rate-limit token, then the release) and a whole `host.call`, on the
 * in-memory store, the embedded SQLite store and PostgreSQL; and an approval lookup beside 1,500
 * pending approvals. Run alone: `npm run build && node --no-node-snapshot dist/benchmarks/state.js`.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parsePolicy, SkillHost } from "../src/index.js";
import type { LoadedSkill } from "../src/manifest/load.js";
import { PolicyEngine } from "../src/policy/engine/engine.js";
import { openStateStore } from "../src/state/open.js";
import type { StateStore } from "../src/state/store.js";
import { fixtures, fmt, time, type Row } from "./lib.js";
import { startPostgres } from "./pg.js";

const POLICY = "version: bench\nrateLimits:\n  - { per: caller, limit: 1000000/sec }\nconcurrency: { perCaller: 64 }\n";
const APPROVALS = "version: bench-ap\napprovals:\n  - { name: all, expiresIn: 24h, mode: time-boxed }\n";

export async function run(n: number): Promise<Row[]> {
  const { root, skills } = fixtures();
  const pg = await startPostgres();
  const specs: [string, string][] = [
    ["memory", "memory"],
    ["embedded", join(root, "state-embedded")],
  ];
  if ("skip" in pg) process.stderr.write(`state benchmark: PostgreSQL skipped: ${pg.skip}\n`);
  else specs.push(["PostgreSQL", pg.url]);
  const rows: Row[] = [];
  const subject = { skill: "noop", caller: "bench", trust: "untrusted" as const, manifest: { name: "noop" } as never };
  const skill = {} as LoadedSkill;
  const noLog = () => undefined;
  try {
    let memoryAdmit: Row["value"] | undefined;
    let memoryCall: Row["value"] | undefined;
    for (const [label, spec] of specs) {
      const store: StateStore = await openStateStore(spec, { workspace: root });
      const engine = new PolicyEngine(parsePolicy(POLICY, "bench.yaml"), { state: store, clock: Date.now, secret: () => undefined });
      const admit = await time(n * 4, async () => {
        const a = await engine.admit(subject, skill, { n: 1 }, noLog);
        if (!a.ok) throw new Error(a.error.message);
        await a.release();
      });
      memoryAdmit ??= admit;
      rows.push({
        scenario: `admission on the ${label} store: concurrency lease + rate-limit token + release`,
        value: admit,
        ...(label === "memory" ? {} : { baseline: { label: "in-memory store", value: memoryAdmit } }),
      });

      const policyFile = join(root, `policy-${label}.yaml`);
      writeFileSync(policyFile, POLICY);
      const host = await SkillHost.open({ skillsDir: skills, workspace: root, policy: policyFile, state: store, audit: join(root, `a-${label}.jsonl`), onWarning: () => undefined });
      const call = await time(n, async () => {
        const r = await host.call("noop", { n: 1 }, { caller: { id: "bench" } });
        if (!r.ok) throw new Error(r.error.message);
      });
      await host.close();
      memoryCall ??= call;
      rows.push({
        scenario: `admitted host.call (noop) with a rate limit and concurrency.perCaller, ${label} store`,
        value: call,
        ...(label === "memory" ? {} : { baseline: { label: "same on the in-memory store", value: memoryCall } }),
      });

      if (label !== "memory") {
        // An approval lookup must not grow with the number of approvals in the store.
        const ap = new PolicyEngine(parsePolicy(APPROVALS, "bench-ap.yaml"), { state: store, clock: Date.now, secret: () => undefined, approvalCaps: { perCaller: 1_000_000, perSkill: 1_000_000 } });
        const approve = async (input: unknown) => {
          const a = await ap.admit(subject, skill, input, noLog);
          if (!a.ok && a.error.code === "E_APPROVAL_REQUIRED") await store.decideApproval((a.error.details as { approvalId: string }).approvalId, "approved", "bench", undefined, Date.now());
        };
        await approve({ k: "hot" });
        const lookup = () => ap.admit(subject, skill, { k: "hot" }, noLog);
        const before = await time(n, lookup);
        for (let i = 0; i < 1500; i++) await ap.admit({ ...subject, caller: `c${i % 50}` }, skill, { i }, noLog);
        const after = await time(n, lookup);
        rows.push({
          scenario: `approved call's approval lookup beside 1,500 pending approvals, ${label} store`,
          value: after,
          baseline: { label: "same with 1 approval in the store", value: before },
          target: "≤ 1.5× the empty store",
          met: after.p50 <= before.p50 * 1.5,
        });
      }
      await store.close();
    }
  } finally {
    if (!("skip" in pg)) pg.stop();
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const rows = await run(Number(process.env["BENCH_N"] ?? 500));
  console.log("| scenario | p50 | p99 | baseline | baseline p50 |\n|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.scenario} | ${fmt(r.value.p50)} | ${fmt(r.value.p99)} | ${r.baseline?.label ?? "—"} | ${r.baseline ? fmt(r.baseline.value.p50) : "—"} |`);
  process.exit(0);
}
