import { describe, expect, it } from "vitest";
import { parsePolicy, parseDuration } from "../../dist/src/index.js";

describe("one duration format", () => {
  it.each([
    ["250ms", 250],
    ["90s", 90_000],
    ["1.5m", 90_000],
    ["2h", 7_200_000],
    ["7d", 604_800_000],
  ])("%s is %d ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "10", "5 minutes", "-1h", "1w", "1e3s"])("refuses %j, saying what it expects", (text) => {
    expect(() => parseDuration(text)).toThrow(/expected a duration such as 30m/);
  });

  it("the policy's approvals[].expiresIn accepts exactly what parseDuration parses", () => {
    expect(() => parsePolicy("version: 1\napprovals: [{ expiresIn: 500ms }]\n", "p.yaml")).not.toThrow();
    expect(() => parsePolicy("version: 1\napprovals: [{ expiresIn: 1w }]\n", "p.yaml")).toThrow(/expiresIn: must be a duration/);
  });
});
