import { z } from "zod";
import { unknownVars } from "../util/vars.js";

export const FILE_ACCESS = ["read", "write", "create", "delete", "list"] as const;
export type FileAccess = (typeof FILE_ACCESS)[number];
export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

const noNul = (s: string) => !s.includes("\0");
const knownVars = (s: string) => unknownVars(s).length === 0;

export const filePathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine(noNul, "must not contain NUL bytes")
  .refine(knownVars, "uses an unknown variable; known: ${workspace}, ${home}, ${skill}, ${tmp}")
  .refine((s) => s.startsWith("/") || s.startsWith("${") || s.startsWith("**"), "must be absolute: start with /, ${workspace}, ${home}, ${skill}, ${tmp} or **")
  .refine((s) => !s.split("/").includes(".."), "must not contain '..' segments")
  .describe("glob over absolute, normalized, symlink-resolved paths");

export const fileRuleSchema = z.strictObject({
  path: filePathSchema,
  access: z.array(z.enum(FILE_ACCESS)).min(1).describe("read | write | create | delete | list"),
});

export const hostPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(\*|\*\.[a-z0-9.-]+|[a-z0-9.-]+|\[[0-9a-f:.]+\]|[0-9a-f:.]+(\/\d{1,3})?)$/i, "must be an exact host, *.suffix, *, an IP address or a CIDR range");

export const networkRuleSchema = z.strictObject({
  host: hostPattern.describe("exact host, *.suffix, or * (any public host)"),
  port: z.number().int().min(1).max(65535).optional(),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  scheme: z.enum(["https", "http"]).optional().describe("https unless stated"),
});

/**
 * One argument pattern: a glob (`*` and `?` stop at `/`, `**` does not; an argument with a `..`
 * segment never matches a glob), a `/regex/`, or a path argument checked like a ctx.fs access.
 */
export const argPatternSchema = z.union([
  z.string().max(4096).refine(knownVars, "uses an unknown variable; known: ${workspace}, ${home}, ${skill}, ${tmp}"),
  z.strictObject({
    path: filePathSchema.describe("glob over the argument resolved against the working folder (absolute, normalized, symlink-resolved)"),
    access: z.array(z.enum(FILE_ACCESS)).min(1).describe("what the process does with that path: read | write | create | delete | list"),
  }),
]);

export const processRuleSchema = z.strictObject({
  command: z.string().min(1).max(4096).refine(noNul, "must not contain NUL bytes")
    .refine((c) => c.startsWith("/") || !c.includes("/"), "must be a bare name (resolved through the policy's bin path) or an absolute path"),
  args: z.array(argPatternSchema).optional().describe("each argument must match one pattern (glob or /regex/, or { path, access }); none: no arguments"),
  network: z.boolean().optional().describe("the process may use the network (only where the trust level's ceiling says so too); default false"),
});

export const permissionsSchema = z.strictObject({
  files: z.array(fileRuleSchema).default([]),
  network: z.array(networkRuleSchema).default([]),
  process: z.array(processRuleSchema).default([]),
});

export const limitsSchema = z.strictObject({
  memoryMb: z.number().int().min(8).max(8192).optional().describe("isolate heap cap in MiB"),
  timeoutMs: z.number().int().min(10).max(3_600_000).optional().describe("wall clock of one attempt, host calls included"),
  outputBytes: z.number().int().min(1).max(64 * 1024 * 1024).optional().describe("cap on the JSON-encoded output"),
});

export const retrySchema = z.strictObject({
  attempts: z.number().int().min(1).max(20).default(1),
  initialDelayMs: z.number().int().min(0).max(600_000).default(100),
  factor: z.number().min(1).max(100).default(2),
  maxDelayMs: z.number().int().min(0).max(3_600_000).default(2000),
  jitter: z.boolean().default(true),
});

const jsonSchemaObject = z.record(z.string(), z.unknown());

/** Refuses manifest grants so broad that they are never what a skill needs. */
function overBroad(path: string): boolean {
  return ["/", "/**", "**", "/*", "**/*", "${home}", "${home}/**"].includes(path.trim());
}

export const manifestSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, "must match ^[a-z][a-z0-9-]{0,63}$ (lower case, digits, dashes)"),
    version: z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, "must be a semver version such as 1.2.0"),
    description: z.string().min(1).max(2048).describe("shown to LLMs as the tool description"),
    entry: z.string().regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+\.m?js$/, "must be a relative .js or .mjs path inside the skill folder").default("index.js"),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits").optional(),
    input: jsonSchemaObject.default({ type: "object" }),
    output: jsonSchemaObject.optional(),
    permissions: permissionsSchema.default({ files: [], network: [], process: [] }),
    limits: limitsSchema.default({}),
    retry: retrySchema.default({ attempts: 1, initialDelayMs: 100, factor: 2, maxDelayMs: 2000, jitter: true }),
    fallback: z
      .union([
        z.strictObject({ skill: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, "must be a skill name") }),
        z.strictObject({ command: z.array(z.string().min(1)).min(1) }),
      ])
      .optional(),
  })
  .superRefine((m, ctx) => {
    m.permissions.files.forEach((rule, i) => {
      if (overBroad(rule.path)) {
        ctx.addIssue({ code: "custom", path: ["permissions", "files", i, "path"], message: `"${rule.path}" grants far more than a skill needs; name the folder it works in` });
      }
    });
    if (m.fallback && "skill" in m.fallback && m.fallback.skill === m.name) {
      ctx.addIssue({ code: "custom", path: ["fallback", "skill"], message: "a skill cannot be its own fallback" });
    }
    if (m.retry.maxDelayMs < m.retry.initialDelayMs) {
      ctx.addIssue({ code: "custom", path: ["retry", "maxDelayMs"], message: `must be >= initialDelayMs (${m.retry.initialDelayMs})` });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type Permissions = z.infer<typeof permissionsSchema>;
export type FileRule = z.infer<typeof fileRuleSchema>;
export type NetworkRule = z.infer<typeof networkRuleSchema>;
export type ProcessRule = z.infer<typeof processRuleSchema>;
export type ArgPattern = z.infer<typeof argPatternSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type RetryOptions = z.infer<typeof retrySchema>;

/** Turns zod issues into file/field/line issues. */
export function zodIssues(error: z.ZodError, file: string, lineOf?: (path: readonly PropertyKey[]) => number | undefined) {
  return error.issues.map((iss) => {
    const field = iss.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "");
    let message = iss.message;
    if (iss.code === "unrecognized_keys") message = `unknown field(s) ${iss.keys.map((k) => `"${k}"`).join(", ")}`;
    const line = lineOf?.(iss.path as PropertyKey[]);
    return line === undefined ? { file, field, message } : { file, field, message, line };
  });
}
