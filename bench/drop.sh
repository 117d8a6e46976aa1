#!/usr/bin/env bash
# bench/drop.sh [REF]: dropping expired weeks of history (docs/benchmarks.md). Each round loads
# BENCH_MESSAGES (1,000,000) messages over 90 days for 1,000 tenants into a fresh comms_drop
# database (`loadgen seed`), lowers every tenant's history retention to BENCH_RETENTION (30 days),
# and times `commsctl partitions drop-expired`, which then drops the weeks before it; it prints
# each week's time and counts. BENCH_ROUNDS (3) rounds; with REF, a round of REF's build and one of
# this tree's alternate (interleaved, as bench/compare.sh does).
#
# With BENCH_INTAKE_RATE (requests a second), each round runs the dev stack (intake only) on the
# seeded database and loadgen at that rate twice, for BENCH_INTAKE_WINDOW (4s) after 5 s of
# warm-up: quiet, then with the drop starting as the measured window does; it prints both runs'
# latencies (p99 and max). The drop is then of what a pass of the partition loop drops in steady
# state, the oldest week or two: retention BENCH_INTAKE_RETENTION (76 days) of the 90 seeded.
#
# BENCH_SEED_ONCE=1 (without REF; for a history too large to load each round, such as
# BENCH_MESSAGES=10000000) loads the history once, and each round drops the oldest week left, as
# the partition loop drops one week a week in steady state: the history retention is set to end
# where that week does. BENCH_SEEDED=1 with it loads nothing, and drops from comms_drop as it is
# (a history loaded before, by an earlier run or by hand), and keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
REF=${1:-}
DB=postgres://postgres@127.0.0.1:5432/comms_drop?sslmode=disable
OUT=$PWD/bench/results/drop-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
. bench/lib.sh
export COMMS_ENCRYPTION_KEYS=${COMMS_ENCRYPTION_KEYS:-v1:$(openssl rand -base64 32)} # commsctl's start-up check

build() { # build DIR: commsctl and loadgen of the tree in DIR into DIR/bin
  (cd "$1" && go build -o bin/ ./cmd/commsctl ./cmd/loadgen ./cmd/dev)
}
build .
trees=(.)
if [ -n "$REF" ]; then
  ref_dir=$(mktemp -d)
  git worktree add -q --detach "$ref_dir" "$REF"
  trap 'git worktree remove --force "$ref_dir"' EXIT
  build "$ref_dir"
  trees=("$ref_dir" .)
fi

if [ -n "${BENCH_SEED_ONCE:-}" ] && [ -n "$REF" ]; then
  echo "BENCH_SEED_ONCE compares no trees: each round drops a different week"; exit 2
fi
seeded=${BENCH_SEEDED:-}
# oldest_week_retention: the history retention, in whole days, that the oldest week of messages
# has passed and the next has not.
oldest_week_retention() {
  psql -h 127.0.0.1 -U postgres -d comms_drop -Atc "
    SELECT floor(extract(epoch FROM now() - min((regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz)) / 86400)::int
    FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE i.inhparent = 'communication.message_logs'::regclass"
}
round() { # round DIR
  local dir=$1 name
  name=$( [ "$dir" = . ] && git rev-parse --short HEAD || git -C "$dir" rev-parse --short HEAD )
  if [ -z "$seeded" ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_drop WITH (FORCE)" -c "CREATE DATABASE comms_drop" >/dev/null
    COMMS_DATABASE_URL=$DB "$dir/bin/commsctl" migrate > /dev/null
    "$dir/bin/loadgen" seed -database-url "$DB" -messages "${BENCH_MESSAGES:-1000000}" -days 90 -tenants 1000 -hot-share 0.2 > /dev/null 2>&1
    [ -n "${BENCH_SEED_ONCE:-}" ] && seeded=1
  fi
  local retention=${BENCH_RETENTION:-30 days}
  [ -n "${BENCH_INTAKE_RATE:-}" ] && retention=${BENCH_INTAKE_RETENTION:-76 days}
  [ -n "${BENCH_SEED_ONCE:-}" ] && retention="$(oldest_week_retention) days"
  psql -q -h 127.0.0.1 -U postgres -d comms_drop -c "UPDATE communication.tenants SET history_retention = interval '$retention'" \
    -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  echo "# $name, history retention $retention" | tee -a "$OUT"
  if [ -z "${BENCH_INTAKE_RATE:-}" ]; then
    measured "$OUT" env COMMS_DATABASE_URL=$DB "$dir/bin/commsctl" partitions drop-expired
    return
  fi
  local log=/tmp/comms-drop-dev.out
  COMMS_DATABASE_URL=$DB COMMS_DEV_KAFKA_PORT=0 COMMS_DEV_WORKER=off COMMS_REDIS_PREFIX=comms-drop: COMMS_LOG_LEVEL=warn \
    "$dir/bin/dev" > "$log" 2>&1 &
  stack_pid=$!
  for _ in $(seq 1 60); do grep -q '^admin key:' "$log" && break; sleep 0.5; done
  ADMIN=$(awk '/^admin key:/{print $3}' "$log")
  [ -n "$ADMIN" ] || { cat "$log"; exit 1; }
  local lg=("$dir/bin/loadgen" -admin-key "$ADMIN" -tenants 10 -rate "$BENCH_INTAKE_RATE" -duration "${BENCH_INTAKE_WINDOW:-4s}" -warmup 5s)
  measured "$OUT" "${lg[@]}" -label "quiet"
  # loadgen's tenants come with the default retention: lowered too, or nothing would be expired.
  (sleep 4.5
   psql -q -h 127.0.0.1 -U postgres -d comms_drop -c "UPDATE communication.tenants SET history_retention = interval '$retention'" >/dev/null
   COMMS_DATABASE_URL=$DB "$dir/bin/commsctl" partitions drop-expired > /tmp/comms-drop-weeks.txt) &
  local dropper=$!
  measured "$OUT" "${lg[@]}" -label "during the drop"
  wait "$dropper"
  tee -a "$OUT" < /tmp/comms-drop-weeks.txt
  kill -TERM "$stack_pid"; wait "$stack_pid" || true
  redis-cli --scan --pattern 'comms-drop:*' | xargs -r -n 1000 redis-cli unlink > /dev/null
}

echo "# $(date -u): drop-expired of a ${BENCH_MESSAGES:-1000000}-message history, $ROUNDS rounds" | tee "$OUT"
for _ in $(seq 1 "$ROUNDS"); do
  for dir in "${trees[@]}"; do
    round "$dir"
  done
done
[ -n "${BENCH_SEEDED:-}" ] || psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_drop WITH (FORCE)" >/dev/null
echo "results: $OUT"
