import { z } from "zod";
import { fileRuleSchema, hostPattern, limitsSchema, networkRuleSchema, processRuleSchema } from "../manifest/schema.js";
import { DURATION_PATTERN } from "../util/duration.js";
import { TRUST_LEVELS } from "./trust.js";
import { compileSlashed, RegexError } from "../util/regex.js";

const ceilingSchema = z.strictObject({
  files: z.array(fileRuleSchema).optional(),
  network: z.array(networkRuleSchema).optional(),
  process: z.array(processRuleSchema).optional(),
  limits: limitsSchema.optional(),
});

const denySchema = z.strictObject({
  files: z.array(z.string().min(1).refine((s) => !s.includes("\0"), "must not contain NUL bytes")).optional(),
  network: z.array(hostPattern).optional(),
});

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]);

/** Which calls a rule applies to; every key given must match. No `match`: every call. */
export const matchSchema = z.strictObject({
  skill: oneOrMany(z.string().min(1)).optional(),
  caller: oneOrMany(z.string().min(1)).optional(),
  trust: oneOrMany(z.enum(TRUST_LEVELS)).optional(),
  permission: oneOrMany(z.enum(["files", "network", "process"])).optional().describe("the skill declares this kind of permission"),
  access: oneOrMany(z.enum(["read", "write", "create", "delete", "list"])).optional().describe("the skill declares this file access"),
});

const rateSpec = z.string().regex(/^\d+\/(sec|min|hour|day)$/, "must look like 30/min (N/sec, N/min, N/hour or N/day)");
const hhmm = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]|24):[0-5]\d$/;
const localTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, "must be a local date and time such as 2026-12-24T00:00");
const tz = z.string().min(1).refine((zone) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}, "must be an IANA time zone such as Europe/Berlin or UTC");
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

export const rateLimitSchema = z.strictObject({
  match: matchSchema.optional(),
  per: z.enum(["caller", "skill", "caller+skill"]).default("caller"),
  limit: rateSpec.describe("token bucket refilled evenly"),
  burst: z.number().int().min(1).max(1_000_000).optional().describe("bucket size; default N"),
});

export const windowSchema = z
  .strictObject({
    name: z.string().min(1).max(100).optional(),
    match: matchSchema.optional(),
    allow: z.strictObject({ days: z.array(z.enum(DAYS)).min(1).optional(), hours: z.string().regex(hhmm, 'must look like "09:00-18:00"').optional(), tz: tz.default("UTC") }).optional(),
    deny: z.strictObject({ from: localTime, to: localTime, tz: tz.default("UTC") }).optional(),
  })
  .refine((w) => (w.allow ? 1 : 0) + (w.deny ? 1 : 0) === 1, "a window has exactly one of allow or deny");

export const filterRuleSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "must be a short lower-case name"),
    pattern: z.string().min(3).optional().describe("a /regex/ with optional flags"),
    terms: z.array(z.string().min(1)).min(1).optional().describe("blocked terms, matched case-insensitively"),
    on: z.array(z.enum(["input", "output", "request"])).min(1).default(["input", "output", "request"]),
    action: z.enum(["log", "redact", "block"]).default("block"),
  })
  .refine((f) => (f.pattern ? 1 : 0) + (f.terms ? 1 : 0) === 1, "a filter has exactly one of pattern or terms")
  .superRefine((f, ctx) => {
    if (f.pattern === undefined) return;
    // Compiled here, at load, on the linear-time engine that will run it (util/regex.ts).
    try {
      compileSlashed(f.pattern);
    } catch (err) {
      if (!(err instanceof RegexError)) throw err;
      ctx.addIssue({ code: "custom", path: ["pattern"], message: err.reason === "must be written /regex/ with optional flags" ? err.reason : `invalid regular expression: ${err.reason}` });
    }
  });

export const approvalRuleSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  match: matchSchema.optional(),
  expiresIn: z.string().regex(DURATION_PATTERN, "must be a duration such as 24h or 30m").default("24h"),
  mode: z.enum(["single-use", "time-boxed"]).default("single-use"),
});

export const expectSchema = z.strictObject({
  skill: z.string().min(1),
  trust: z.enum(TRUST_LEVELS),
  need: z.union([
    z.strictObject({ files: z.string().min(1), access: z.enum(["read", "write", "create", "delete", "list"]) }),
    z.strictObject({ network: z.string().min(1), method: z.string().optional() }),
    z.strictObject({ process: z.string().min(1), args: z.array(z.string()).default([]) }),
  ]),
  decision: z.enum(["allow", "deny"]),
});

export const signingSchema = z.strictObject({
  require: z.array(z.enum(TRUST_LEVELS)).default([]).describe("levels whose skills must be signed"),
  keys: z.record(z.string().regex(/^[A-Za-z0-9._-]+$/), z.string().min(40).describe("Ed25519 public key, base64 SPKI (DER)")).default({}),
  hmacKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional().describe("environment variable holding a shared HMAC key"),
});

export const policySchema = z
  .looseObject({
    version: z.union([z.literal(1), z.string().min(1)]).describe("1, or a label for this policy version"),
    trust: z.partialRecord(z.enum(TRUST_LEVELS), ceilingSchema).optional(),
    deny: denySchema.optional(),
    binPath: z.array(z.string().regex(/^\//, "must be an absolute folder")).optional().describe("folders where bare command names are looked up"),
    audit: z
      .strictObject({
        failMode: z.enum(["open", "closed"]).optional().describe("open: calls go on when the log cannot be written; closed: they are refused"),
        redact: z.array(z.string().min(1).regex(/^[A-Za-z0-9_$*[\]."'-]+$/, "must be a pino redact path such as fields.email")).optional().describe("more event fields to remove"),
      })
      .optional(),
    rateLimits: z.array(rateLimitSchema).optional(),
    concurrency: z.strictObject({ perCaller: z.number().int().min(1).max(100_000) }).optional(),
    windows: z.array(windowSchema).optional(),
    filters: z
      .strictObject({
        presets: z.array(z.enum(["private-keys", "cloud-keys", "bearer-tokens"])).default([]),
        rules: z.array(filterRuleSchema).default([]),
      })
      .optional(),
    approvals: z.array(approvalRuleSchema).optional(),
    signing: signingSchema.optional(),
    process: z
      .strictObject({
        sandbox: z
          .enum(["auto", "required", "off"])
          .default("auto")
          .describe("confine every process a skill starts with bubblewrap: auto (where bwrap works, else unconfined with a warning), required (refuse processes without it), off"),
      })
      .optional()
      .describe("how processes started by skills (ctx.exec, fallback commands) are confined"),
    expect: z.array(expectSchema).optional(),
  })
  .superRefine((p, ctx) => {
    const known = ["version", "trust", "deny", "binPath", "audit", "rateLimits", "concurrency", "windows", "filters", "approvals", "signing", "expect", "process"];
    for (const key of Object.keys(p)) {
      if (!known.includes(key)) ctx.addIssue({ code: "custom", path: [key], message: `unknown field "${key}" (known: ${known.join(", ")})` });
    }
    for (const [level, ceiling] of Object.entries(p.trust ?? {})) {
      ceiling?.files?.forEach((rule, i) => {
        if (level !== "system" && ["/", "/**", "**", "/*"].includes(rule.path)) {
          ctx.addIssue({ code: "custom", path: ["trust", level, "files", i, "path"], message: `"${rule.path}" gives trust level ${level} the whole file system; only "system" may have that` });
        }
      });
    }
  });

export type PolicyFile = z.infer<typeof policySchema>;
export type MatchRule = z.infer<typeof matchSchema>;
export type RateLimitRule = z.infer<typeof rateLimitSchema>;
export type WindowRule = z.infer<typeof windowSchema>;
export type FilterRule = z.infer<typeof filterRuleSchema>;
export type ApprovalRule = z.infer<typeof approvalRuleSchema>;
export type ExpectCase = z.infer<typeof expectSchema>;
export type SigningRules = z.infer<typeof signingSchema>;
