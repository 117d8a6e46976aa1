#!/usr/bin/env bash
# bench/idle.sh [REF]: what the stack at rest costs PostgreSQL (docs/benchmarks.md). Runs the dev
# stack (API, one worker, webhook) on a fresh comms_bench database whose partitions reach
# BENCH_WEEKS (15) weeks back, as a 90-day history's do, waits 10 s, and then sums, over
# BENCH_WINDOW (30) seconds with nothing sent, the planning and execution time of every statement
# (pg_stat_statements) and the machine's idle CPU. With REF, each of BENCH_ROUNDS (3) rounds runs
# REF's stack and this tree's, interleaved. Needs pg_stat_statements loaded by the server
# (shared_preload_libraries; planning tracked with pg_stat_statements.track_planning = on).
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${1:-}
ROUNDS=${BENCH_ROUNDS:-3}
WINDOW=${BENCH_WINDOW:-30}
DB=postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable
OUT=$PWD/bench/results/idle-$(date -u +%Y%m%dT%H%M%SZ).txt
LOG=/tmp/comms-idle-dev.out
mkdir -p bench/results bin
export COMMS_ENCRYPTION_KEYS=${COMMS_ENCRYPTION_KEYS:-v1:$(openssl rand -base64 32)} # commsctl's start-up check
psql -h 127.0.0.1 -U postgres -d postgres -Atc "SHOW shared_preload_libraries" | grep -q pg_stat_statements ||
  { echo "bench/idle.sh needs pg_stat_statements in the server's shared_preload_libraries"; exit 1; }
go build -o bin/ ./cmd/dev ./cmd/commsctl
. bench/lib.sh # before the trap below, which replaces lib.sh's
trees=(.)
if [ -n "$REF" ]; then
  ref_dir=$(mktemp -d)
  git worktree add -q --detach "$ref_dir" "$REF"
  trap 'kill -TERM $stack_pid $broker_pid 2>/dev/null || true; git worktree remove --force "$ref_dir"' EXIT
  (cd "$ref_dir" && mkdir -p bin && go build -o bin/ ./cmd/dev ./cmd/commsctl)
  trees=("$ref_dir" .)
fi
echo "# $(date -u): $(git rev-parse --short HEAD)+tree${REF:+ against $REF}, the stack at rest for ${WINDOW}s with ${BENCH_WEEKS:-15} weeks" | tee "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  for dir in "${trees[@]}"; do
    name=$( [ "$dir" = . ] && echo "$(git rev-parse --short HEAD)+tree" || git -C "$dir" rev-parse --short HEAD )
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" -c "CREATE DATABASE comms_bench" >/dev/null
    (cd "$dir" && COMMS_DATABASE_URL=$DB ./bin/commsctl migrate > /dev/null &&
      COMMS_DATABASE_URL=$DB ./bin/commsctl partitions create -from "$(date -u -d "-$((${BENCH_WEEKS:-15} * 7 - 7)) days" +%F)" > /dev/null)
    (cd "$dir" && BENCH_KEEP_DATABASE=1 start_stack 0 on && sleep 10 &&
      psql -q -h 127.0.0.1 -U postgres -d comms_bench -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null &&
      measured "$OUT" bash -c "sleep $WINDOW; echo 'run \"$name round $round\": PostgreSQL' \$(psql -h 127.0.0.1 -U postgres -d comms_bench -Atc \"
        SELECT round(sum(total_plan_time)) || ' ms planning, ' || round(sum(total_exec_time)) || ' ms executing, ' || sum(calls) || ' statements'
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'comms_bench')\")" &&
      psql -h 127.0.0.1 -U postgres -d comms_bench -c "
        SELECT calls, round(total_plan_time) AS plan_ms, round(total_exec_time) AS exec_ms, regexp_replace(left(query, 80), '\s+', ' ', 'g') AS statement
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'comms_bench')
        ORDER BY total_plan_time + total_exec_time DESC LIMIT 5" | tee -a "$OUT"
      stop_stack)
  done
done
awk '/^run "/ { side = $2; sub(/^"/, "", side); t[side] = t[side] " " ($6 + $9) }
  END { for (s in t) printf "%s: PostgreSQL ms planning and executing in %ss at rest:%s\n", s, "'"$WINDOW"'", t[s] }' "$OUT" | sort | tee -a "$OUT"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" >/dev/null
echo "results: $OUT"
