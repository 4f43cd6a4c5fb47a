export { SkillHost } from "./host.js";
export type { CallOptions, CallProgress, Caller } from "./call/caller.js";
export type { CallResult } from "./call/result.js";
export type { LoadProblem, SkillInfo, SkillSource } from "./registry/registry.js";
export { resolveHostOptions, auditKeyFromEnv, AUDIT_KEY_ENV, DEFAULTS } from "./config/options.js";
export type { SkillHostOptions, ResolvedHostOptions, AuditOptions } from "./config/options.js";
export {
  SkillError,
  ValidationError,
  ERROR_CODES,
  EXIT_CODES,
  HTTP_STATUS,
  SIGNAL_EXIT_CODES,
  FALLBACK_CODES,
  exitCodeFor,
  isSkillError,
  SkillNotFoundError,
  IntegrityError,
  InputInvalidError,
  OutputInvalidError,
  PermissionDeniedError,
  RateLimitedError,
  ApprovalRequiredError,
  TimeoutError,
  MemoryLimitError,
  SkillFailedError,
  CancelledError,
  UnauthenticatedError,
} from "./errors.js";
export type { DetailsOf, ErrorCode, ErrorDetails, ExitCode, FallbackFailureDetails, Issue, NeedDetail, SkillErrorOptions } from "./errors.js";
export { authorize, describeNeeds } from "./policy/authorize.js";
export type { AuthorizeResult, Ceiling, CeilingLimits, Decision, Grant, Policy, TrustLevel, UncoveredNeed } from "./policy/model.js";
export { checkFileAccess } from "./policy/check.js";
export { builtinPolicy, loadPolicyFile, parsePolicy } from "./policy/load.js";
export { TRUST_LEVELS, DEFAULT_CEILINGS, DEFAULT_DENY } from "./policy/trust.js";
export { loadSkillDir, parseManifest } from "./manifest/load.js";
export type { LoadedSkill } from "./manifest/model.js";
export type { Manifest } from "./manifest/schema.js";
export { AuditLog } from "./audit/log.js";
export { verifyAuditFile, verifyAuditText } from "./audit/verify.js";
export { reviewEvents, statsOf } from "./audit/review.js";
export { parseDuration } from "./util/duration.js";
export type { AuditEvent, AuditStats, SessionReview, SkillReview, Flag } from "./audit/review.js";
export type { MetricsSnapshot } from "./audit/metrics.js";
export type { VerifyResult } from "./audit/verify.js";
export { toolDefinitions, TOOL_FORMATS } from "./tools.js";
export type { ToolFormat } from "./tools.js";
export { REQUIRED_NODE_MAJOR, runtimeProblem, UnsupportedRuntimeError } from "./runtime.js";
export { openStateStore, isPostgresUrl } from "./state/open.js";
export type { StateStore, StoreKind, Approval, ApiToken, PolicyVersion, RateDecision, LeaseResult } from "./state/store.js";
