/** Stable error codes (DESIGN.md, "Results and errors"). Tests assert on these, never on messages. */
export const ERROR_CODES = [
  "E_SKILL_NOT_FOUND",
  "E_MANIFEST_INVALID",
  "E_POLICY_INVALID",
  "E_INTEGRITY",
  "E_INPUT_INVALID",
  "E_OUTPUT_INVALID",
  "E_PERMISSION_DENIED",
  "E_RATE_LIMITED",
  "E_APPROVAL_REQUIRED",
  "E_TIMEOUT",
  "E_MEMORY_LIMIT",
  "E_SKILL_ERROR",
  "E_CANCELLED",
  "E_UNAUTHENTICATED",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A need the trust level does not cover, as a denial's details carry it (policy/model.ts UncoveredNeed). */
export interface NeedDetail {
  kind: string;
  target: string;
  access?: string;
  reason: string;
}

/** A primary failure followed by a failed fallback: the error takes the fallback's code and carries both. */
export interface FallbackFailureDetails {
  primary: { code: ErrorCode; message: string; retryable: boolean; details?: unknown };
  fallback: { code: ErrorCode; message: string; retryable?: boolean; details?: unknown };
}

/**
 * What `details` holds, per code. A call's error is the JSON of these (CallResult.error.details);
 * any code may instead carry FallbackFailureDetails (see DetailsOf).
 */
export interface ErrorDetails {
  /** a skill folder that failed to load carries its issues */
  E_SKILL_NOT_FOUND: { issues: Issue[] } | undefined;
  E_MANIFEST_INVALID: { issues: Issue[] };
  E_POLICY_INVALID: { issues: Issue[] };
  /** issues of a signature file, the signing rule that refused an unsigned skill, or the pinned hash that does not match */
  E_INTEGRITY: { issues: Issue[] } | { rule: string } | { file: string; field: string; expected: string; actual: string };
  /** schema errors, or the host option that was refused */
  E_INPUT_INVALID: { errors: string[] } | { option: string } | undefined;
  E_OUTPUT_INVALID: { errors: string[] } | undefined;
  E_PERMISSION_DENIED:
    | { needs: NeedDetail[] }
    | { op: string; target: string; rule: string }
    | { rule: string; filter: string }
    | { rule: string; window: string | null }
    | { rule: string; approvalId: string }
    | { reason: "audit-unwritable" };
  E_RATE_LIMITED:
    | { retryAfterMs: number; rule: string }
    | { retryAfterMs: number; reason: "busy" }
    /** the shared state store could not be reached to check `rule`: refused, not skipped */
    | { retryAfterMs: number; rule: string; reason: "state-unavailable" }
    /** too many approval requests pending for this caller or skill */
    | { retryAfterMs: number; rule: string; reason: "approvals-pending-per-caller" | "approvals-pending-per-skill"; pending: number; max: number };
  E_APPROVAL_REQUIRED: { approvalId: string; expiresAt: number | string | null; rule: string };
  E_TIMEOUT: undefined;
  E_MEMORY_LIMIT: undefined;
  /** the name of what the skill threw (TypeError, ...), or the primary failure of a too-deep fallback chain */
  E_SKILL_ERROR: { name: string } | { primary: FallbackFailureDetails["primary"] } | undefined;
  /** why the call was cancelled (the abort reason, "shutdown", "client gone", ...) */
  E_CANCELLED: { reason: string } | undefined;
  /** which credential was missing or wrong, never the credential itself */
  E_UNAUTHENTICATED: { reason: string } | undefined;
}

export type DetailsOf<C extends ErrorCode> = ErrorDetails[C] | FallbackFailureDetails;

export interface SkillErrorOptions<C extends ErrorCode> {
  /** @default true for E_TIMEOUT, false otherwise */
  retryable?: boolean;
  details?: DetailsOf<C>;
  cause?: unknown;
}

/**
 * The one error type of skillbox. `code` is stable; `message` says what was expected, found,
 * and how to fix it; `details` is typed per code (ErrorDetails). Each code has a subclass
 * below (PermissionDeniedError, ...) for construction and for `instanceof` checks.
 */
export class SkillError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name: string = "SkillError";
  readonly code: C;
  readonly retryable: boolean;
  readonly details: DetailsOf<C> | undefined;

  constructor(code: C, message: string, options: SkillErrorOptions<C> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? code === "E_TIMEOUT";
    this.details = options.details;
  }

  toJSON(): { code: C; message: string; retryable: boolean; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message, retryable: this.retryable }
      : { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** Whether `err` is a SkillError, optionally with one of the given codes (narrows `details`). */
export function isSkillError<C extends ErrorCode>(err: unknown, ...codes: C[]): err is SkillError<C> {
  return err instanceof SkillError && (codes.length === 0 || (codes as ErrorCode[]).includes(err.code));
}

/**
 * The subclass for one code. `instanceof` goes by code, so every SkillError with that code
 * counts, wherever it was made (`new SkillError("E_TIMEOUT", ...)` is a TimeoutError too): the
 * hierarchy cannot drift from the codes.
 */
function codeClass<C extends ErrorCode>(code: C, className: string) {
  const Coded = class extends SkillError<C> {
    override readonly name: string = className;
    constructor(message: string, options: SkillErrorOptions<C> = {}) {
      super(code, message, options);
    }
    static override [Symbol.hasInstance](value: unknown): value is SkillError<C> {
      return value instanceof SkillError && value.code === code;
    }
  };
  Object.defineProperty(Coded, "name", { value: className });
  return Coded;
}

export const SkillNotFoundError = codeClass("E_SKILL_NOT_FOUND", "SkillNotFoundError");
export type SkillNotFoundError = SkillError<"E_SKILL_NOT_FOUND">;
export const IntegrityError = codeClass("E_INTEGRITY", "IntegrityError");
export type IntegrityError = SkillError<"E_INTEGRITY">;
export const InputInvalidError = codeClass("E_INPUT_INVALID", "InputInvalidError");
export type InputInvalidError = SkillError<"E_INPUT_INVALID">;
export const OutputInvalidError = codeClass("E_OUTPUT_INVALID", "OutputInvalidError");
export type OutputInvalidError = SkillError<"E_OUTPUT_INVALID">;
export const PermissionDeniedError = codeClass("E_PERMISSION_DENIED", "PermissionDeniedError");
export type PermissionDeniedError = SkillError<"E_PERMISSION_DENIED">;
export const RateLimitedError = codeClass("E_RATE_LIMITED", "RateLimitedError");
export type RateLimitedError = SkillError<"E_RATE_LIMITED">;
export const ApprovalRequiredError = codeClass("E_APPROVAL_REQUIRED", "ApprovalRequiredError");
export type ApprovalRequiredError = SkillError<"E_APPROVAL_REQUIRED">;
export const TimeoutError = codeClass("E_TIMEOUT", "TimeoutError");
export type TimeoutError = SkillError<"E_TIMEOUT">;
export const MemoryLimitError = codeClass("E_MEMORY_LIMIT", "MemoryLimitError");
export type MemoryLimitError = SkillError<"E_MEMORY_LIMIT">;
/** E_SKILL_ERROR: the skill threw, or its fallback failed */
export const SkillFailedError = codeClass("E_SKILL_ERROR", "SkillFailedError");
export type SkillFailedError = SkillError<"E_SKILL_ERROR">;
export const CancelledError = codeClass("E_CANCELLED", "CancelledError");
export type CancelledError = SkillError<"E_CANCELLED">;
export const UnauthenticatedError = codeClass("E_UNAUTHENTICATED", "UnauthenticatedError");
export type UnauthenticatedError = SkillError<"E_UNAUTHENTICATED">;

/** Codes after which the declared fallback may run (DESIGN.md). */
export const FALLBACK_CODES: ReadonlySet<ErrorCode> = new Set(["E_TIMEOUT", "E_MEMORY_LIMIT", "E_SKILL_ERROR", "E_OUTPUT_INVALID"]);

/**
 * CLI exit code per error code (DESIGN.md, "CLI"): 1 the skill failed at run time, 2 the request
 * or configuration is wrong, 3 refused by policy, 130 cancelled. Exhaustive: a new code does not
 * compile until it has a row here.
 */
export const EXIT_CODES = {
  E_SKILL_ERROR: 1,
  E_TIMEOUT: 1,
  E_MEMORY_LIMIT: 1,
  E_OUTPUT_INVALID: 1,
  E_INPUT_INVALID: 2,
  E_SKILL_NOT_FOUND: 2,
  E_MANIFEST_INVALID: 2,
  E_POLICY_INVALID: 2,
  E_INTEGRITY: 2,
  E_PERMISSION_DENIED: 3,
  E_RATE_LIMITED: 3,
  E_APPROVAL_REQUIRED: 3,
  E_UNAUTHENTICATED: 3,
  E_CANCELLED: 130,
} as const satisfies Record<ErrorCode, number>;

export type ExitCode = 0 | (typeof EXIT_CODES)[ErrorCode] | 143;

/**
 * Exit codes of a command ended by a signal (128 + signal number). E_CANCELLED maps to 130; a
 * `run` ended by SIGTERM exits 143: the CLI's signal handler picks by signal.
 */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** CLI exit code for an error code. */
export function exitCodeFor(code: ErrorCode): (typeof EXIT_CODES)[ErrorCode] {
  return EXIT_CODES[code];
}

/** HTTP status of a call's result per error code (DESIGN.md, "HTTP server"). Exhaustive, like EXIT_CODES. */
export const HTTP_STATUS = {
  E_INPUT_INVALID: 400,
  E_SKILL_NOT_FOUND: 404,
  E_PERMISSION_DENIED: 403,
  E_APPROVAL_REQUIRED: 403,
  E_RATE_LIMITED: 429,
  E_SKILL_ERROR: 502,
  E_TIMEOUT: 502,
  E_MEMORY_LIMIT: 502,
  E_OUTPUT_INVALID: 502,
  E_CANCELLED: 499,
  E_UNAUTHENTICATED: 401,
  E_MANIFEST_INVALID: 500,
  E_POLICY_INVALID: 500,
  E_INTEGRITY: 500,
} as const satisfies Record<ErrorCode, number>;

/** One problem found while validating a file: which file, which field, why, and where. */
export interface Issue {
  file: string;
  field: string;
  message: string;
  line?: number;
}

export function formatIssue(issue: Issue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}`;
  return `${where}: ${issue.field || "(root)"}: ${issue.message}`;
}

/** Thrown for an invalid manifest or policy: carries every issue at once. */
export class ValidationError extends SkillError {
  readonly issues: Issue[];
  constructor(code: "E_MANIFEST_INVALID" | "E_POLICY_INVALID" | "E_INTEGRITY", issues: Issue[]) {
    super(code, issues.map(formatIssue).join("\n"), { details: { issues } });
    this.issues = issues;
  }
}

/** Any thrown value as a SkillError: SkillErrors pass through, anything else is the skill's failure (not retryable). */
export function asSkillError(err: unknown): SkillError {
  if (err instanceof SkillError) return err;
  return new SkillError("E_SKILL_ERROR", err instanceof Error ? err.message : String(err), { retryable: false });
}
