import { z } from "zod";
import { fileRuleSchema, hostPattern, limitsSchema, networkRuleSchema, processRuleSchema } from "../manifest/schema.js";
import { TRUST_LEVELS } from "./trust.js";

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

/** Sections of the policy engine (DESIGN.md) that this version does not enforce yet: refused, never ignored. */
const NOT_YET = ["rateLimits", "concurrency", "windows", "filters", "approvals", "signing", "expect"] as const;

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
  })
  .superRefine((p, ctx) => {
    for (const key of Object.keys(p)) {
      if (["version", "trust", "deny", "binPath", "audit"].includes(key)) continue;
      const message = (NOT_YET as readonly string[]).includes(key)
        ? `"${key}" is part of the policy engine, which this skillbox version does not enforce yet; remove it rather than rely on a rule that is not applied`
        : `unknown field "${key}" (known: version, trust, deny, binPath, audit)`;
      ctx.addIssue({ code: "custom", path: [key], message });
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
