/** Help text of every command: what it does, its flags, and examples. Printing it never runs anything. */

const TRUST = "untrusted, user-verified, trusted, system";

const HOST_FLAGS = `  --skills DIR       folder of skill folders (default ./skills)
  --policy FILE      policy file, YAML or TOML (default skillbox.policy.yaml in the workspace, else built-in)
  --workspace DIR    the folder \${workspace} stands for (default .)
  --audit FILE       security log (default <workspace>/.skillbox/audit.jsonl)
  --state DIR|URL    shared state: rate limits, concurrency, approvals, policy versions; a folder holds
                     a database shared by the processes of this machine, a postgres:// URL one shared
                     by every host using it (default <workspace>/.skillbox)`;

export const OVERVIEW = `skillbox: run JavaScript skills in V8 isolates, within what their manifest declares and their caller's trust allows

Usage: skillbox <command> [options]       skillbox <command> --help for its options and examples

Commands:
  run <skill>        run one skill and print its output
  list               the skills in a folder and the lowest trust level that may run each
  validate [PATH...] lint skill folders, manifests and policy files
  tools              tool definitions for MCP, OpenAI or Anthropic
  mcp                serve the skills as an MCP server on stdio
  audit              verify, tail, review or summarize the security log
  approvals          list, approve or deny pending approvals
  policy             test, diff, show or list versions of the policy
  sign DIR           sign a skill folder
  keygen FILE        make an Ed25519 signing key
  schema KIND        the JSON Schema of skill.yaml (manifest) or the policy file (policy)

Trust levels: ${TRUST} (default untrusted).
Exit codes: 0 ok, 1 the skill failed at run time, 2 bad request or configuration, 3 refused by policy,
130/143 interrupted (SIGINT/SIGTERM).
Run \`skillbox --version\` for the version.`;

export const HELP: Record<string, string> = {
  run: `skillbox run <skill> [options]: run one skill for a caller and print its output

Options:
  --input JSON       the input object (default {})
  --input-file FILE  read the input from a file; - reads standard input
  --trust LEVEL      the caller's trust level: ${TRUST} (default untrusted)
  --caller ID        who is calling, for the log and per-caller limits (default cli)
  --session ID       groups calls in the log
  --json             print exactly one CallResult object on stdout, whatever happens
${HOST_FLAGS}

Progress (retries, waits) goes to stderr. Ctrl-C cancels the call (exit 130; SIGTERM: 143).

Examples:
  skillbox run word-stats --input '{"text": "a b a"}'
  skillbox run read-notes --trust user-verified --input '{"query": "sandbox"}' --json
  echo '{"text": "hi"}' | skillbox run word-stats --input-file -`,

  list: `skillbox list [options]: the skills in a folder, their version and the lowest trust level that may run each

Options:
  --json             an array of skills with allowedAt (the trust levels that may run each)
${HOST_FLAGS}

Examples:
  skillbox list
  skillbox list --skills ./my-skills --policy team.policy.toml --json`,

  validate: `skillbox validate [PATH...] [options]: lint skill folders, manifests and policy files

Checks each manifest against the schema, compiles every JSON Schema and pattern, loads the entry
in a sandbox (syntax, imports outside the folder or of node: built-ins, a default export), resolves
fallback skills, checks that the folder name is the skill's name, and prints which trust levels may
run each skill under the policy. Default PATH: ./skills and skillbox.policy.yaml (or .toml).

Options:
  --policy FILE      judge trust levels under this policy (default the workspace's, else built-in)
  --workspace DIR    the folder \${workspace} stands for (default .)
  --json             one array of results

Examples:
  skillbox validate
  skillbox validate skills/my-skill
  skillbox validate skillbox.policy.toml --json`,

  tools: `skillbox tools --format mcp|openai|anthropic [options]: tool definitions of the skills a trust level may run

Options:
  --format F         mcp, openai or anthropic
  --trust LEVEL      ${TRUST} (default untrusted)
${HOST_FLAGS}

Examples:
  skillbox tools --format openai --trust user-verified
  skillbox tools --format anthropic > tools.json`,

  mcp: `skillbox mcp [options]: serve the skills as MCP tools on stdio (stdout carries protocol only)

Options:
  --trust LEVEL      the trust level of every call from this client (default untrusted)
  --caller ID        who is calling, for the log and per-caller limits (default mcp)
  --session ID       groups this server's calls in the log (default a new id)
${HOST_FLAGS}

One startup line goes to stderr. Skill folders and the policy file are watched; tools/list_changed
is sent when they change. notifications/cancelled and a client that goes away cancel calls.

Examples:
  skillbox mcp --workspace ~/notes --trust user-verified
  claude mcp add skillbox -- npx -y skillbox mcp --workspace "$PWD" --trust user-verified`,

  audit: `skillbox audit verify|tail|review|stats [options]: read the security log

  verify             check the hash chain (exit 1 if a line was edited, removed or reordered)
  tail [-n N] [-f]   the last N events, one line each; -f follows new ones
  review [--since DURATION] [--session ID]   sessions with flagged actions
  stats              counts per skill, outcome and rule

Options:
  --audit FILE       the log (default ./.skillbox/audit.jsonl)
  --postgres URL [--table T]   read the log from PostgreSQL instead
  --key-env NAME     the variable holding the chain key (default SKILLBOX_AUDIT_KEY)
  --anchor FILE      a head anchor to check the log's end against
  --public-key KEY   the checkpoint signing key
  --json             machine-readable output

Examples:
  skillbox audit verify
  skillbox audit tail -n 50 -f
  skillbox audit review --since 24h`,

  approvals: `skillbox approvals list | approve ID | deny ID [options]: decide calls that need an approval

Options:
  --reason TEXT      why (logged with the decision)
  --workspace DIR    (default .)   --state DIR|URL (default <workspace>/.skillbox)   --audit FILE
  --limit N          list at most N, newest first (default 1000)
  --json             list as JSON (the input each approval is for, as the policy's filters redacted it)

Examples:
  skillbox approvals list
  skillbox approvals approve 3f2c9a --reason "checked with the user"`,

  policy: `skillbox policy test [FILE] | diff A B | versions | show [options]: work with the policy

  test [FILE]        run the policy's expect: cases against the skills
  diff A B           rule-level diff of two policy files or recorded versions
  versions           the versions loaded so far
  show [--trust L]   the effective ceilings per trust level (built-in merged with the policy file)

Options:
  --policy FILE      (show) the policy to show (default the workspace's, else built-in)
  --skills DIR  --workspace DIR  --state DIR|URL  --json

Examples:
  skillbox policy show --trust user-verified
  skillbox policy test skillbox.policy.yaml
  skillbox policy diff old.policy.yaml skillbox.policy.yaml
  skillbox policy versions --state postgres://skillbox@db/skillbox
  skillbox policy diff v1 v2            (versions by a prefix of their name or hash)`,

  sign: `skillbox sign DIR [--key FILE] [--key-id NAME]: sign a skill folder (manifest + entry)

With --key: an Ed25519 PEM private key (see skillbox keygen); without: the shared HMAC secret in
SKILLBOX_SIGNING_KEY.

Examples:
  skillbox keygen release.pem && skillbox sign skills/read-notes --key release.pem --key-id release`,

  keygen: `skillbox keygen FILE: write a new Ed25519 signing key to FILE and print its public key for the policy

Example:
  skillbox keygen release.pem`,

  schema: `skillbox schema manifest|policy: print the JSON Schema of a skill manifest or a policy file
Every field carries its description, for editor completion and hover docs. What JSON Schema
cannot say (variables, over-broad paths, regex syntax) skillbox validate checks.

Examples:
  skillbox schema manifest > skill.schema.json     # then, atop skill.yaml:
                                                   # yaml-language-server: $schema=./skill.schema.json
  skillbox schema policy > policy.schema.json`,
};
