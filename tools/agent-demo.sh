#!/usr/bin/env bash
# The main job in miniature: an agent's session on the host base. A sandbox
# runs what an agent would (write a script, run it, edit and delete files);
# every command is recorded; then the session's timeline and what the last
# command changed are printed.
#
# Usage: tools/agent-demo.sh [STRATA_BINARY]   (default: strata on PATH)
# Environment: STRATA_STORE (default /tmp/strata-demo.db), DEMO_SESSION.
set -euo pipefail
S=${1:-strata}
export STRATA_STORE=${STRATA_STORE:-/tmp/strata-demo.db}
session=${DEMO_SESSION:-agent-$(date +%Y%m%d-%H%M%S)}

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "strata init $session   # the host's system files, copy-on-write (first time: indexes the host)"
"$S" init "$session"

step "strata run $session -- sh -c 'mkdir -p /work && cat > /work/count.py ...'"
"$S" run "$session" -- sh -c 'mkdir -p /work && cat > /work/count.py <<PY
import sys
words = open(sys.argv[1]).read().split()
print(len(words), "words")
PY
printf "the quick brown fox\n" > /work/notes.txt && echo wrote /work/count.py'

step "strata run $session -- python3 /work/count.py /work/notes.txt"
"$S" run "$session" -- python3 /work/count.py /work/notes.txt

step "strata run $session -- sh -c 'echo jumps over the lazy dog >> /work/notes.txt; rm /work/count.py; echo print\\(1\\) > /work/next.py'"
"$S" run "$session" -- sh -c 'echo jumps over the lazy dog >> /work/notes.txt; rm /work/count.py; echo "print(1)" > /work/next.py; cat /work/notes.txt'

step "strata log $session   # every command, with what it changed"
"$S" log "$session"

ids=($("$S" --json log "$session" --limit 2 | grep -o '"id": *[0-9]*' | grep -o '[0-9]*$'))
last=${ids[0]} previous=${ids[1]}
step "strata show $session $last   # the last command: output and changed paths"
"$S" show "$session" "$last"

step "strata diff --content $session@call:$previous $session@call:$last   # ... as a diff"
"$S" diff --content "$session@call:$previous" "$session@call:$last" || true
echo
echo "Store: $STRATA_STORE  (try: strata run -t $session -- bash)"
