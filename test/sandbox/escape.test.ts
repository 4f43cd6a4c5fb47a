import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SkillHost } from "../../dist/src/index.js";
import { fixture, writeSkill } from "../helpers.js";

describe("hostile skill code cannot reach the host", () => {
  let host: SkillHost;
  beforeAll(async () => {
    const fx = fixture();
    const add = (name: string, src: string, files: Record<string, string> = {}) => writeSkill(fx.skills, name, "", { "index.js": src, ...files });
    add(
      "probe-globals",
      `export default async function (input, ctx) {
        const viaCtor = ctx.fs.readFile.constructor("return this")();
        return {
          require: typeof require, process: typeof process, wasm: typeof WebAssembly, sab: typeof SharedArrayBuffer,
          atomics: typeof Atomics, ctorGlobalProcess: typeof viaCtor.process, ivm: typeof viaCtor.ivm,
          globals: Object.getOwnPropertyNames(globalThis).filter((k) => !/^[A-Z]/.test(k)).sort(),
        };
      }`,
    );
    add("import-builtin", `import fs from "node:fs"; export default async () => typeof fs;`);
    add("import-package", `import pino from "pino"; export default async () => typeof pino;`);
    add("import-outside", `import x from "../probe-globals/index.js"; export default async () => typeof x;`);
    add("dynamic-import", `export default async () => { const m = await import("node:child_process"); return typeof m; };`);
    add("relative-ok", `import { twice } from "./lib/math.js"; export default async (i) => twice(i.n);`, { "lib/math.js": "export const twice = (n) => n * 2;" });
    add("stateful", `globalThis.count = (globalThis.count ?? 0) + 1; let local = 0; export default async () => ({ count: globalThis.count, local: ++local });`);
    add(
      "tamper-ctx",
      `export default async function (input, ctx) {
        const attempts = [];
        try { ctx.fs.readFile = async () => "forged"; } catch (e) { attempts.push("fs frozen"); }
        try { ctx.env.workspace = "/"; } catch (e) { attempts.push("env frozen"); }
        try { Object.defineProperty(ctx, "fetch", { value: 1 }); } catch (e) { attempts.push("ctx frozen"); }
        try { ctx.log.info = () => undefined; } catch (e) { attempts.push("log frozen"); }
        try { delete ctx.exec; } catch (e) { attempts.push("exec kept"); }
        try { ctx.extra = 1; } catch (e) { attempts.push("ctx closed"); }
        if (input.report) {
          const frozen = Object.entries(ctx).filter(([, v]) => v !== null && typeof v === "object").every(([, v]) => Object.isFrozen(v));
          return { attempts, ctxFrozen: Object.isFrozen(ctx), partsFrozen: frozen, workspace: ctx.env.workspace, execType: typeof ctx.exec };
        }
        // Replace intrinsics the prelude uses; it captured its own copies first.
        JSON.parse = () => ({ ok: true, value: "forged" });
        JSON.stringify = () => "{}";
        Promise.prototype.then = function () { throw new Error("hijacked"); };
        let read = "refused";
        try { read = await ctx.fs.readFile("/etc/hostname"); } catch (e) { read = "refused: " + e.code; }
        return attempts.concat([read]);
      }`,
    );
    add(
      "stack-walk",
      `export default async function (input, ctx) {
        const found = [];
        Error.prepareStackTrace = (e, frames) => frames.map((f) => typeof f.getFunction());
        try { await ctx.fetch("https://x.example", { get method() { throw new Error("x"); } }); } catch (e) { found.push(String(e.stack)); }
        try { ctx.log.info({ toString() { throw new Error("x"); } }); } catch (e) { found.push(String(e.stack)); }
        return found;
      }`,
    );
    host = await fx.open();
  });
  afterAll(async () => host.close());

  it("no require, process, WebAssembly, SharedArrayBuffer or host object is reachable", async () => {
    const r = await host.call("probe-globals", {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.output).toMatchObject({ require: "undefined", process: "undefined", wasm: "undefined", sab: "undefined", atomics: "undefined", ctorGlobalProcess: "undefined", ivm: "undefined" });
    // Only standard lower-case globals: nothing skillbox left behind.
    const globals = (r.output as { globals: string[] }).globals;
    expect(
      globals.filter(
        (g) =>
          ![
            "decodeURI",
            "decodeURIComponent",
            "encodeURI",
            "encodeURIComponent",
            "escape",
            "eval",
            "globalThis",
            "isFinite",
            "isNaN",
            "parseFloat",
            "parseInt",
            "undefined",
            "unescape",
            "console",
            "Infinity",
            "NaN",
            // the prelude's web globals: plain JavaScript, or strings through one synchronous callback
            "atob",
            "btoa",
            "clearTimeout",
            "crypto",
            "queueMicrotask",
            "setTimeout",
            "structuredClone",
          ].includes(g),
      ),
    ).toEqual([]);
  });

  it.each(["import-builtin", "import-package", "import-outside", "dynamic-import"])("%s is refused", async (name) => {
    const r = await host.call(name, {});
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("E_SKILL_ERROR");
      expect(r.error.retryable).toBe(false);
    }
  });

  it("relative imports inside the skill folder work", async () => {
    const r = await host.call("relative-ok", { n: 21 });
    expect(r.ok && r.output).toBe(42);
  });

  it("no state survives from one call to the next (fresh isolate per attempt)", async () => {
    const a = await host.call("stateful", {});
    const b = await host.call("stateful", {});
    expect(a.ok && a.output).toEqual({ count: 1, local: 1 });
    expect(b.ok && b.output).toEqual({ count: 1, local: 1 });
  });

  it("ctx and every object in it are frozen: each tampering attempt throws and changes nothing", async () => {
    const r = await host.call("tamper-ctx", { report: true });
    expect(r.ok && r.output).toEqual({
      attempts: ["fs frozen", "env frozen", "ctx frozen", "log frozen", "exec kept", "ctx closed"],
      ctxFrozen: true,
      partsFrozen: true,
      workspace: expect.not.stringMatching(/^\/$/),
      execType: "function",
    });
  });

  it("replacing intrinsics does not forge capability replies", async () => {
    const r = await host.call("tamper-ctx", {});
    expect(r.ok).toBe(false);
    // The forged readFile never happened: the real one was called and refused.
    if (!r.ok) expect(r.error.code).toBe("E_PERMISSION_DENIED");
  });

  it("stack traces expose no host function", async () => {
    const r = await host.call("stack-walk", {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    // Both host-backed calls threw inside the sandbox and their stacks were walked.
    const stacks = r.output as string[];
    expect(stacks).toHaveLength(2);
    for (const s of stacks) expect(s.length).toBeGreaterThan(0);
    expect(JSON.stringify(stacks)).not.toMatch(/"function"|,function|function,/);
  });
});
