#!/usr/bin/env bash
# Runs every example skill through the CLI, as a new user would, in examples/workspace.
# Some calls are meant to be refused or to fail: the exit code is shown after each.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/examples/workspace"
rm -rf .skillbox reports
sb() { node --no-node-snapshot "$ROOT/bin/skillbox.js" "$@" --skills "$ROOT/skills"; }
step() { printf '\n\033[1m$ skillbox %s\033[0m\n' "$*"; sb "$@"; echo "(exit $?)"; }

echo "skillbox demo in $(pwd) — Node $(node --version)"
step run word-stats --input '{"text":"the cat saw the other cat","top":2}'
step run read-notes --input '{"query":"sandbox"}'
step run read-notes --input '{"query":"sandbox"}' --trust user-verified --session demo
step run write-report --input '{"title":"Demo report","items":["ran","refused","retried"]}' --trust user-verified
step run write-report --input '{"title":"Demo report","items":["ran","refused","retried"]}' --trust trusted --session demo
step run flaky-upstream --session demo
step run define-word --input '{"word":"isolate"}' --session demo
step run word-stats --input '{"text": 42}'
step run git-log-summary --input '{"count":3}' --trust user-verified
# A confined git sees only the workspace: give it a throwaway repository as its workspace.
repo="$(mktemp -d)"; git -C "$repo" init -q && git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q --allow-empty -m "first commit in the demo repository"
step run git-log-summary --input '{"count":3}' --trust trusted --session demo --workspace "$repo" --policy "$ROOT/examples/workspace/skillbox.policy.yaml" --audit "$ROOT/examples/workspace/.skillbox/audit.jsonl"
rm -rf "$repo"
# A throwaway local server for dev-health; loopback is reachable only because the policy names it.
node -e 'require("http").createServer((q,s)=>s.end(q.url==="/health"?"ok":"nope")).listen(8765,"127.0.0.1")' &
server=$!
sleep 0.5
step run dev-health --input '{"port":8765}' --trust trusted --session demo
kill "$server" 2>/dev/null
step run word-stats --input '{"text":"my key AKIAIOSFODNN7EXAMPLE"}'
# Deleting needs an operator's approval under the demo policy.
step run delete-report --input '{"name":"demo-report"}' --trust trusted --session demo
id=$(node "$ROOT/bin/skillbox.js" approvals list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const a=JSON.parse(s).find(x=>x.status==="pending");process.stdout.write(a?a.id:"")})')
printf '\n\033[1m$ skillbox approvals approve %s --reason "demo cleanup"\033[0m\n' "$id"
node "$ROOT/bin/skillbox.js" approvals approve "$id" --reason "demo cleanup"
step run delete-report --input '{"name":"demo-report"}' --trust trusted --session demo
printf '\n\033[1m$ skillbox policy test\033[0m\n'
node "$ROOT/bin/skillbox.js" policy test --skills "$ROOT/skills"
printf '\n\033[1m$ skillbox audit tail -n 25\033[0m\n'
node "$ROOT/bin/skillbox.js" audit tail -n 25
printf '\n\033[1m$ skillbox audit verify\033[0m\n'
node "$ROOT/bin/skillbox.js" audit verify
printf '\n\033[1m$ skillbox audit review --session demo\033[0m\n'
node "$ROOT/bin/skillbox.js" audit review --session demo
printf '\n\033[1m$ skillbox audit stats\033[0m\n'
node "$ROOT/bin/skillbox.js" audit stats
