import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  EXIT_CODES,
  HTTP_STATUS,
  InputInvalidError,
  PermissionDeniedError,
  RateLimitedError,
  SkillError,
  SkillHost,
  SkillNotFoundError,
  TimeoutError,
  ValidationError,
  exitCodeFor,
  isSkillError,
} from "../dist/src/index.js";
import { EXAMPLE_SKILLS, tempDir } from "./helpers.js";

describe("one error hierarchy", () => {
  it("every code has a CLI exit code and an HTTP status; cancellation exits 130", () => {
    for (const code of ERROR_CODES) {
      expect(EXIT_CODES[code], code).toBeTypeOf("number");
      expect(HTTP_STATUS[code], code).toBeTypeOf("number");
    }
    expect(Object.keys(EXIT_CODES).sort()).toEqual([...ERROR_CODES].sort());
    expect(exitCodeFor("E_CANCELLED")).toBe(130);
    expect(exitCodeFor("E_UNAUTHENTICATED")).toBe(3);
    expect([exitCodeFor("E_TIMEOUT"), exitCodeFor("E_POLICY_INVALID"), exitCodeFor("E_APPROVAL_REQUIRED")]).toEqual([1, 2, 3]);
  });

  it("a subclass is a SkillError with its code, and instanceof goes by code wherever the error was made", () => {
    const denied = new PermissionDeniedError("no", { details: { op: "fs.readFile", target: "/etc/passwd", rule: "deny.files[0]" } });
    expect(denied).toBeInstanceOf(SkillError);
    expect(denied).toBeInstanceOf(Error);
    expect(denied.code).toBe("E_PERMISSION_DENIED");
    expect(denied.name).toBe("PermissionDeniedError");
    expect(denied.retryable).toBe(false);
    expect(denied.toJSON()).toEqual({ code: "E_PERMISSION_DENIED", message: "no", retryable: false, details: { op: "fs.readFile", target: "/etc/passwd", rule: "deny.files[0]" } });
    const viaBase = new SkillError("E_TIMEOUT", "slow");
    expect(viaBase).toBeInstanceOf(TimeoutError);
    expect(viaBase.retryable).toBe(true);
    expect(viaBase).not.toBeInstanceOf(PermissionDeniedError);
    expect(new Error("plain")).not.toBeInstanceOf(TimeoutError);
    expect({ code: "E_TIMEOUT" }).not.toBeInstanceOf(TimeoutError);
    expect(isSkillError(new RateLimitedError("busy", { details: { retryAfterMs: 100, reason: "busy" } }), "E_RATE_LIMITED")).toBe(true);
    expect(isSkillError(viaBase, "E_RATE_LIMITED", "E_APPROVAL_REQUIRED")).toBe(false);
    expect(isSkillError("E_TIMEOUT")).toBe(false);
  });

  it("the public API throws coded errors: bad options, unknown skills, unknown approvals, bad policies", async () => {
    await expect(SkillHost.open({ workspace: tempDir(), maxQueued: -1, warm: false })).rejects.toBeInstanceOf(InputInvalidError);
    const policy = `${tempDir()}/missing.yaml`;
    const bad = await SkillHost.open({ workspace: tempDir(), skillsDir: EXAMPLE_SKILLS, policy, warm: false }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as SkillError).code).toBe("E_POLICY_INVALID");
    const ws = tempDir();
    const host = await SkillHost.open({ workspace: ws, skillsDir: EXAMPLE_SKILLS, audit: `${ws}/a.jsonl`, workers: 1, warm: false, onWarning: () => undefined });
    try {
      expect(() => host.authorize("no-such-skill", "untrusted")).toThrow(SkillNotFoundError);
      // Approvals live in the shared state store: deciding one is asynchronous.
      const caught: unknown = await host.decideApproval("no-such-approval", "approve").catch((err: unknown) => err);
      expect(caught).toBeInstanceOf(InputInvalidError);
      expect((caught as SkillError).message).toMatch(/no-such-approval/);
    } finally {
      await host.close();
    }
  });
});

describe("CallOptions.caller.trust", () => {
  it("takes a plain string (type and runtime); one that is not a level refuses the call with E_INPUT_INVALID", async () => {
    const ws = tempDir();
    const host = await SkillHost.open({ workspace: ws, skillsDir: EXAMPLE_SKILLS, audit: `${ws}/a.jsonl`, workers: 1, warm: false, onWarning: () => undefined });
    try {
      const fromRequest: string = ["root"].join("");
      const r = await host.call("word-stats", { text: "x" }, { caller: { id: "u", trust: fromRequest } });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe("E_INPUT_INVALID");
    } finally {
      await host.close();
    }
  });
});
