#!/usr/bin/env bash
# bench/push-compare.sh BASE: push fan-out (bench/push.sh) for the git ref BASE and for this tree,
# one round each, alternating for BENCH_ROUNDS rounds (default 3), so that a slow spell of the
# machine lands on both. BENCH_PLATFORM as in bench/push.sh. Each side's figures go to its own
# bench/results/push-*.txt; this prints them as they come.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: bench/push-compare.sh GIT-REF}
WT=/tmp/comms-push-base
rm -rf "$WT"; git worktree prune
git worktree add -q --detach "$WT" "$BASE"
trap 'git worktree remove --force "$WT"' EXIT
for round in $(seq 1 "${BENCH_ROUNDS:-3}"); do
  for side in base new; do
    dir=$PWD; [ "$side" = base ] && dir=$WT
    echo "== $side round $round"
    BENCH_ROUNDS=1 bash "$dir/bench/push.sh" 2>&1 | grep -E "push fan-out|machine during"
  done
done
