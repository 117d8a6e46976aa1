#!/usr/bin/env bash
# bench/compare.sh BASE: end to end at max (the e2e max row of bench/run.sh) for the git ref BASE
# and for this tree, interleaved for BENCH_ROUNDS rounds (default 3) so a slow spell of the machine
# lands on both; prints each run and the medians. For changes that must cost nothing (tracing off).
# BENCH_MODE=intake compares intake max instead (no worker: the intake max row).
# BENCH_NEW_ARGS adds loadgen flags to this tree's runs only (a feature the base lacks, such as
# -category news for the preference check on every send).
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: bench/compare.sh GIT-REF}
ROUNDS=${BENCH_ROUNDS:-3}
MODE=${BENCH_MODE:-e2e}
DURATION=${BENCH_DURATION:-20s}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
WORKER=on; E2E=(-database-url "$DB")
# Intake alone: no worker, and nothing end to end to wait for.
[ "$MODE" = intake ] && { WORKER=off; E2E=(); }
OUT=$PWD/bench/results/compare-$(date -u +%Y%m%dT%H%M%SZ).txt
WT=/tmp/comms-compare-base
mkdir -p bench/results bin
rm -rf "$WT"; git worktree prune
git worktree add -q --detach "$WT" "$BASE"
(cd "$WT" && mkdir -p bin && go build -o bin/ ./cmd/dev ./cmd/loadgen)
go build -o bin/ ./cmd/dev ./cmd/loadgen
echo "# $(date -u): $BASE ($(git rev-parse --short "$BASE")) against $(git rev-parse --short HEAD)+tree, $MODE max ${DURATION}, $ROUNDS rounds" | tee "$OUT"
LOG=/tmp/comms-compare-dev.out
. bench/lib.sh
trap 'kill -TERM $stack_pid $broker_pid 2>/dev/null || true; git worktree remove --force "$WT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for side in base new; do
    dir=$PWD; extra=(); [ "$side" = base ] && dir=$WT
    [ "$side" = new ] && read -r -a extra <<< "${BENCH_NEW_ARGS:-}"
    (cd "$dir" && start_stack 0 $WORKER && measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -duration "$DURATION" \
      -label "$side round $round" -concurrency 128 "${E2E[@]}" "${extra[@]}"; stop_stack)
  done
done
awk '/^run "/ { side = $2; sub(/^"/, "", side) }
  /delivered .*\/s overall/ { for (i = 1; i <= NF; i++) if ($i == "delivered") { v = $(i+1); sub(/\/s/, "", v); r[side] = r[side] " " v } }
  /accepted -> sent ms:/ { for (i = 1; i <= NF; i++) if ($i == "p99") p[side] = p[side] " " $(i+1) }
  /^  intake: / { v = $0; sub(/.*accepted \(/, "", v); sub(/\/s.*/, "", v); a[side] = a[side] " " v }
  /intake latency ms:/ { for (i = 1; i <= NF; i++) if ($i == "p99") l[side] = l[side] " " $(i+1) }
  END { for (s in a) printf "%s: accepted/s%s; intake p99 ms%s; delivered/s%s; accepted -> sent p99 ms%s\n", s, a[s], l[s], r[s], p[s] }' "$OUT" | tee -a "$OUT"
echo "results: $OUT"
