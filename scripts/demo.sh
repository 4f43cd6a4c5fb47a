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
printf '\n\033[1m$ skillbox audit tail -n 25\033[0m\n'
node "$ROOT/bin/skillbox.js" audit tail -n 25
printf '\n\033[1m$ skillbox audit verify\033[0m\n'
node "$ROOT/bin/skillbox.js" audit verify
