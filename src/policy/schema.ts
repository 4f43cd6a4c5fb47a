import { z } from "zod";
import { breadthOf } from "../manifest/breadth.js";
import { fileRuleSchema, hostPattern, limitsSchema, networkRuleSchema, processRuleSchema } from "../manifest/schema.js";
import { DURATION_PATTERN } from "../util/duration.js";
import { TRUST_LEVELS } from "./trust.js";
import { compileSlashed, RegexError } from "../util/regex.js";

export const ceilingSchema = z
  .strictObject({
    files: z.array(fileRuleSchema).optional().describe("the most any skill may read/write at this level; replaces the built-in list"),
    network: z.array(networkRuleSchema).optional().describe("the hosts any skill may reach at this level; replaces the built-in list"),
    process: z.array(processRuleSchema).optional().describe("the programs any skill may run at this level; replaces the built-in list"),
    limits: limitsSchema.optional().describe("the highest memoryMb, timeoutMs and outputBytes a skill may ask for; merged key by key with the built-in ones"),
  })
  .describe("the ceiling of one trust level: what a skill running at it may be granted at most");

const denySchema = z
  .strictObject({
    files: z
      .array(
        z
          .string()
          .min(1)
          .refine((s) => !s.includes("\0"), "must not contain NUL bytes"),
      )
      .optional()
      .describe("path globs no skill may touch at any level; added to the built-in ones"),
    network: z.array(hostPattern).optional().describe("hosts no skill may reach at any level; added to the built-in ones"),
  })
  .describe("refused for every level, whatever a ceiling or manifest says");

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t.describe("one value"), z.array(t).min(1).describe("any of these values")]);

/** Which calls a rule applies to; every key given must match. No `match`: every call. */
export const matchSchema = z.strictObject({
  skill: oneOrMany(z.string().min(1)).optional().describe("skill name(s)"),
  caller: oneOrMany(z.string().min(1)).optional().describe("caller id(s)"),
  trust: oneOrMany(z.enum(TRUST_LEVELS)).optional().describe("the caller's trust level(s)"),
  permission: oneOrMany(z.enum(["files", "network", "process"]))
    .optional()
    .describe("the skill declares this kind of permission"),
  access: oneOrMany(z.enum(["read", "write", "create", "delete", "list"]))
    .optional()
    .describe("the skill declares this file access"),
});

const rateSpec = z.string().regex(/^\d+\/(sec|min|hour|day)$/, "must look like 30/min (N/sec, N/min, N/hour or N/day)");
const hhmm = /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]|24):[0-5]\d$/;
const localTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, "must be a local date and time such as 2026-12-24T00:00");
const tz = z
  .string()
  .min(1)
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, "must be an IANA time zone such as Europe/Berlin or UTC");
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

export const rateLimitSchema = z.strictObject({
  match: matchSchema.optional().describe("which calls count against the limit; default all"),
  per: z.enum(["caller", "skill", "caller+skill"]).default("caller").describe("one bucket per caller, per skill, or per caller and skill"),
  limit: rateSpec.describe("token bucket refilled evenly"),
  burst: z.number().int().min(1).max(1_000_000).optional().describe("bucket size; default N"),
});

const allowSpan = z
  .strictObject({
    days: z.array(z.enum(DAYS)).min(1).optional().describe("weekdays the window is open (mon..sun); default every day"),
    hours: z.string().regex(hhmm, 'must look like "09:00-18:00"').optional().describe('local time span such as "09:00-18:00"; default all day'),
    tz: tz.default("UTC").describe("IANA time zone of days and hours, such as Europe/Berlin"),
  })
  .describe("calls are allowed only inside this time");
const blackout = z
  .strictObject({
    from: localTime.describe("start, local date and time such as 2026-12-24T00:00"),
    to: localTime.describe("end, local date and time"),
    tz: tz.default("UTC").describe("IANA time zone of from and to"),
  })
  .describe("calls are refused inside this time");
const windowCommon = {
  name: z.string().min(1).max(100).optional().describe("shown in refusals and the log"),
  match: matchSchema.optional().describe("which calls the window applies to; default all"),
};

/** A time window: exactly one of `allow` (open hours) or `deny` (a blackout). */
export const windowSchema = z.union(
  [
    z.strictObject({ ...windowCommon, allow: allowSpan, deny: z.never().optional().describe("not with allow") }),
    z.strictObject({ ...windowCommon, deny: blackout, allow: z.never().optional().describe("not with deny") }),
  ],
  { error: "a window has exactly one of allow or deny" },
);

const filterCommon = {
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "must be a short lower-case name")
    .describe("names the filter in refusals and the log"),
  on: z
    .array(z.enum(["input", "output", "request"]))
    .min(1)
    .default(["input", "output", "request"])
    .describe("what is filtered: call input, skill output, ctx.fetch request bodies"),
  action: z.enum(["log", "redact", "block"]).default("block").describe("log the match, mask it, or refuse the call"),
};
const filterPattern = z
  .string()
  .min(3)
  .describe("a /regex/ with optional flags")
  .superRefine((pattern, ctx) => {
    // Compiled here, at load, on the linear-time engine that will run it (util/regex.ts).
    try {
      compileSlashed(pattern);
    } catch (err) {
      if (!(err instanceof RegexError)) throw err;
      ctx.addIssue({ code: "custom", message: err.reason === "must be written /regex/ with optional flags" ? err.reason : `invalid regular expression: ${err.reason}` });
    }
  });

/** A content filter: exactly one of `pattern` (a regex) or `terms` (words). */
export const filterRuleSchema = z.union(
  [
    z.strictObject({ ...filterCommon, pattern: filterPattern, terms: z.never().optional().describe("not with pattern") }),
    z.strictObject({ ...filterCommon, terms: z.array(z.string().min(1)).min(1).describe("blocked terms, matched case-insensitively"), pattern: z.never().optional().describe("not with terms") }),
  ],
  { error: "a filter has exactly one of pattern or terms" },
);

export const approvalRuleSchema = z.strictObject({
  name: z.string().min(1).max(100).optional().describe("shown in the approval request and the log"),
  match: matchSchema.optional().describe("which calls need approval; default all"),
  expiresIn: z
    .string()
    .regex(DURATION_PATTERN, "must be a duration such as 24h or 30m")
    .default("24h")
    .describe("how long a request (and a time-boxed approval) stays valid: 250ms, 90s, 30m, 24h, 7d"),
  mode: z.enum(["single-use", "time-boxed"]).default("single-use").describe("single-use: one call with the same input; time-boxed: any call until it expires"),
});

export const expectSchema = z
  .strictObject({
    skill: z.string().min(1).describe("a registered skill (a case about an unknown skill is skipped and reported)"),
    trust: z.enum(TRUST_LEVELS).describe("the caller's trust level"),
    need: z
      .union([
        z.strictObject({
          files: z.string().min(1).describe("a path (variables allowed)"),
          access: z.enum(["read", "write", "create", "delete", "list"]).describe("the access tried"),
        }),
        z.strictObject({ network: z.string().min(1).describe("a URL or host"), method: z.string().optional().describe("HTTP method; default GET") }),
        z.strictObject({ process: z.string().min(1).describe("a command"), args: z.array(z.string()).default([]).describe("its arguments") }),
      ])
      .describe("the access tried: a file, a URL or a command"),
    decision: z.enum(["allow", "deny"]).describe("what the policy must decide; the policy is refused otherwise"),
  })
  .describe("a self-test case run at load: the policy is refused when the decision differs");

export const signingSchema = z.strictObject({
  require: z.array(z.enum(TRUST_LEVELS)).default([]).describe("levels whose skills must be signed"),
  keys: z
    .record(z.string().regex(/^[A-Za-z0-9._-]+$/), z.string().min(40).describe("Ed25519 public key, base64 SPKI (DER)"))
    .default({})
    .describe("trusted public keys by key id"),
  hmacKeyEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/)
    .optional()
    .describe("environment variable holding a shared HMAC key"),
});

/** skillbox.policy.yaml: trust ceilings, deny rules, and the admission rules over calls. */
export const policySchema = z
  .looseObject({
    version: z
      .union([z.literal(1), z.string().min(1)], {
        error: (iss) =>
          typeof iss.input === "number" ? `must be 1 or a quoted label such as "2026-05", got the number ${iss.input} (YAML reads an unquoted 1.0 as a number)` : "must be 1 or a label string",
      })
      .describe("1, or a label for this policy version (quote labels that look like numbers)"),
    trust: z.partialRecord(z.enum(TRUST_LEVELS), ceilingSchema).optional().describe("ceilings by trust level (untrusted, user-verified, trusted, system); levels left out keep the built-in ones"),
    deny: denySchema.optional(),
    binPath: z.array(z.string().regex(/^\//, "must be an absolute folder")).optional().describe("folders where bare command names are looked up"),
    audit: z
      .strictObject({
        failMode: z.enum(["open", "closed"]).optional().describe("open: calls go on when the log cannot be written; closed: they are refused"),
        redact: z
          .array(
            z
              .string()
              .min(1)
              .regex(/^[A-Za-z0-9_$*[\]."'-]+$/, "must be a pino redact path such as fields.email"),
          )
          .optional()
          .describe("more event fields to remove"),
        anchor: z.string().min(1).optional().describe("file (best on another volume or host) where the chain's head is also recorded at every checkpoint; relative to the policy file"),
        signingKey: z
          .string()
          .min(1)
          .optional()
          .describe("Ed25519 private key file (skillbox keygen) that signs checkpoints and the anchor; relative to the policy file; default: the HMAC key SKILLBOX_AUDIT_KEY, if set"),
        checkpointEvery: z.number().int().min(1).max(1_000_000).optional().describe("a signed log.checkpoint line after this many lines (and at close); default 1000"),
      })
      .optional()
      .describe("the security log"),
    rateLimits: z.array(rateLimitSchema).optional().describe("token buckets; a call over any matching limit is refused with E_RATE_LIMITED"),
    concurrency: z
      .strictObject({ perCaller: z.number().int().min(1).max(100_000).describe("calls one caller may have in flight at once") })
      .optional()
      .describe("calls in flight per caller"),
    windows: z.array(windowSchema).optional().describe("times when matching calls may run (allow) or may not (deny)"),
    filters: z
      .strictObject({
        presets: z
          .array(z.enum(["private-keys", "cloud-keys", "bearer-tokens"]))
          .default([])
          .describe("built-in filters: private-keys, cloud-keys, bearer-tokens (block)"),
        rules: z.array(filterRuleSchema).default([]).describe("your own filters"),
      })
      .optional()
      .describe("content filters over call input, skill output and ctx.fetch request bodies"),
    approvals: z.array(approvalRuleSchema).optional().describe("matching calls wait for an operator's approval (E_APPROVAL_REQUIRED until then)"),
    signing: signingSchema.optional().describe("which levels run only signed skills, and the keys trusted to sign them"),
    process: z
      .strictObject({
        sandbox: z
          .enum(["auto", "required", "off"])
          .default("auto")
          .describe("confine every process a skill starts with bubblewrap: auto (where bwrap works, else unconfined with a warning), required (refuse processes without it), off"),
      })
      .optional()
      .describe("how processes started by skills (ctx.exec, fallback commands) are confined"),
    expect: z.array(expectSchema).optional().describe("self-test cases the policy must pass to be loaded"),
  })
  .superRefine((p, ctx) => {
    const known = ["version", "trust", "deny", "binPath", "audit", "rateLimits", "concurrency", "windows", "filters", "approvals", "signing", "expect", "process"];
    for (const key of Object.keys(p)) {
      if (!known.includes(key)) ctx.addIssue({ code: "custom", path: [key], message: `unknown field "${key}" (known: ${known.join(", ")})` });
    }
    for (const [level, ceiling] of Object.entries(p.trust ?? {})) {
      ceiling?.files?.forEach((rule, i) => {
        if (level !== "system" && breadthOf(rule.path) === "file-system") {
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
