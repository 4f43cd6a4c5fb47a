import { afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import { AUDIT_KEY_ENV, DEFAULTS, SkillError, SkillHost, resolveHostOptions } from "../../dist/src/index.js";
import { Slots } from "../../dist/src/execution/slots.js";
import { tempDir } from "../helpers.js";

describe("resolveHostOptions: every default and its check in one place", () => {
  const savedKey = process.env[AUDIT_KEY_ENV];
  afterEach(() => {
    if (savedKey === undefined) delete process.env[AUDIT_KEY_ENV];
    else process.env[AUDIT_KEY_ENV] = savedKey;
  });

  it("fills in the documented defaults, paths made absolute against the workspace", () => {
    const ws = tempDir();
    const r = resolveHostOptions({ workspace: ws }, () => false);
    expect(r.workspace).toBe(ws);
    expect(r.stateDir).toBe(join(ws, ".skillbox"));
    expect(r.audit.file).toBe(join(ws, ".skillbox", "audit.jsonl"));
    expect(r.policyFile).toBeUndefined();
    expect([r.workers, r.pool, r.maxConcurrent, r.maxQueued, r.maxInputBytes, r.warm]).toEqual([Math.max(2, availableParallelism()), DEFAULTS.pool, 64, 1024, 1024 * 1024, true]);
  });

  it("finds skillbox.policy.yaml in the workspace when no policy is given", () => {
    const ws = tempDir();
    expect(resolveHostOptions({ workspace: ws }, (p) => p === join(ws, "skillbox.policy.yaml")).policyFile).toBe(join(ws, "skillbox.policy.yaml"));
  });

  it("takes the audit chain key from SKILLBOX_AUDIT_KEY unless one is given", () => {
    const ws = tempDir();
    process.env[AUDIT_KEY_ENV] = "from-env";
    expect(resolveHostOptions({ workspace: ws }).audit.key).toBe("from-env");
    expect(resolveHostOptions({ workspace: ws, audit: { key: "given" } }).audit.key).toBe("given");
    delete process.env[AUDIT_KEY_ENV];
    expect(resolveHostOptions({ workspace: ws }).audit.key).toBeUndefined();
  });

  it.each([
    [{ maxConcurrent: 0 }, "Expected `maxConcurrent` to be a positive integer, got `0`"],
    [{ maxQueued: -1 }, "Expected `maxQueued` to be a non-negative integer, got `-1`"],
    [{ workers: 1.5 }, "Expected `workers` to be a positive integer, got `1.5`"],
    [{ maxInputBytes: Number.NaN }, "Expected `maxInputBytes` to be a positive integer, got `NaN`"],
    [{ pool: { perSkill: -2 } }, "Expected `pool.perSkill` to be a non-negative integer, got `-2`"],
    [{ warm: "yes" }, 'Expected `warm` to be a boolean, got `"yes"`'],
    [{ clock: 5 }, "Expected `clock` to be a function, got `5`"],
    [{ skillsDir: "" }, 'Expected `skillsDir` to be a non-empty string, got `""`'],
  ])("refuses %j with a message naming the option", (bad, message) => {
    let caught: unknown;
    try {
      resolveHostOptions({ workspace: tempDir(), ...(bad as object) });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SkillError);
    expect((caught as SkillError).code).toBe("E_INPUT_INVALID");
    expect((caught as SkillError).message).toBe(message);
  });

  it("SkillHost.open refuses a bad option before it starts anything", async () => {
    await expect(SkillHost.open({ workspace: tempDir(), skillsDir: tempDir(), maxConcurrent: 0, warm: false })).rejects.toMatchObject({
      code: "E_INPUT_INVALID",
      message: expect.stringContaining("`maxConcurrent`"),
    });
  });

  it("a workspace that does not exist is E_INPUT_INVALID", () => {
    expect(() => resolveHostOptions({ workspace: join(tempDir(), "missing") })).toThrow(/does not exist/);
  });
});

describe("Slots: the one owner of host concurrency", () => {
  it("runs at most maxConcurrent, queues up to maxQueued, refuses past that", async () => {
    const slots = new Slots(2, 1);
    const a = await slots.acquire();
    const b = await slots.acquire();
    expect(typeof a).toBe("function");
    expect(typeof b).toBe("function");
    let cGot = false;
    const c = slots.acquire().then((r) => {
      cGot = true;
      return r;
    });
    const d = await slots.acquire();
    expect(d).toBeInstanceOf(SkillError);
    expect((d as SkillError).code).toBe("E_RATE_LIMITED");
    expect(slots.stats).toEqual({ running: 2, waiting: 1 });
    expect(cGot).toBe(false);
    (a as () => void)();
    const cRelease = await c;
    expect(typeof cRelease).toBe("function");
    // The slot went straight to the waiter: still two running, nobody waiting.
    expect(slots.stats).toEqual({ running: 2, waiting: 0 });
    (b as () => void)();
    (b as () => void)(); // releasing twice frees one slot only
    (cRelease as () => void)();
    expect(slots.stats).toEqual({ running: 0, waiting: 0 });
  });

  it("a newcomer cannot take a slot that was handed to a waiter", async () => {
    const slots = new Slots(1, 5);
    const first = (await slots.acquire()) as () => void;
    const waiter = slots.acquire();
    first();
    const newcomer = slots.acquire();
    await waiter;
    expect(slots.stats).toEqual({ running: 1, waiting: 1 });
    ((await waiter) as () => void)();
    ((await newcomer) as () => void)();
    expect(slots.stats).toEqual({ running: 0, waiting: 0 });
  });
});
