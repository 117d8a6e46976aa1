#!/usr/bin/env bash
# bench/atsize.sh: comms on a history at size against an empty database (docs/benchmarks.md).
# Loads BENCH_MESSAGES (10,000,000) messages over 90 days for 1,000 tenants, one hot with 20%, at
# the default content retention (`loadgen seed`), into the database comms_seed unless it holds
# them already (BENCH_RESEED=1 loads it again), drops what is past retention, and then, for
# BENCH_ROUNDS (3) rounds, runs intake max and end-to-end max (BENCH_DURATION, 20s, as
# bench/compare.sh) on a fresh empty database and on the seeded one, interleaved; last, the hot
# tenant's and another's reads of the history (`loadgen reads`, 2 clients, 10 s, 3 runs each). The seeded runs
# add their messages to the history (some 100,000 a run), which the figures ignore; what an
# intake-only run leaves to send is cleared, or the next run would start behind it, and the
# seeded database is vacuumed before each run, as autovacuum would have done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
MESSAGES=${BENCH_MESSAGES:-10000000}
DURATION=${BENCH_DURATION:-20s}
SEEDED=postgres://postgres@127.0.0.1:5432/comms_seed?sslmode=disable
EMPTY=postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable
OUT=$PWD/bench/results/atsize-$(date -u +%Y%m%dT%H%M%SZ).txt
LOG=/tmp/comms-atsize-dev.out
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen ./cmd/commsctl
export COMMS_ENCRYPTION_KEYS=${COMMS_ENCRYPTION_KEYS:-v1:$(openssl rand -base64 32)} # commsctl's start-up check
. bench/lib.sh

have=$(psql -qtA -h 127.0.0.1 -U postgres -d comms_seed -c "SELECT count(*) FROM communication.message_logs" 2>/dev/null || echo 0)
if [ "${BENCH_RESEED:-}" = 1 ] || [ "$have" -lt "$MESSAGES" ]; then
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_seed WITH (FORCE)" -c "CREATE DATABASE comms_seed" >/dev/null
  COMMS_DATABASE_URL=$SEEDED ./bin/commsctl migrate > /dev/null
  ./bin/loadgen seed -database-url "$SEEDED" -messages "$MESSAGES" -days 90 -tenants 1000 -hot-share 0.2 | tee -a "$OUT"
  psql -q -h 127.0.0.1 -U postgres -d comms_seed -c "VACUUM ANALYZE" >/dev/null
fi
COMMS_DATABASE_URL=$SEEDED ./bin/commsctl migrate > /dev/null # a history seeded by an earlier release
COMMS_DATABASE_URL=$SEEDED ./bin/commsctl partitions drop-expired | tee -a "$OUT"
psql -q -h 127.0.0.1 -U postgres -d comms_seed -c "TRUNCATE communication.dispatch_queue, communication.event_outbox, communication.usage_deltas, communication.analytics_deltas" >/dev/null
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CHECKPOINT" >/dev/null
echo "# $(date -u): $(git rev-parse --short HEAD), $(psql -qtA -h 127.0.0.1 -U postgres -d comms_seed -c "SELECT count(*) FROM communication.message_logs") messages seeded, $ROUNDS rounds of $DURATION" | tee -a "$OUT"

# Autovacuum is off on this machine class; in production it would have vacuumed what the last
# run left between two runs. Without it the seeded database carries every earlier run's dead rows
# into the next: the folds' `DELETE FROM usage_deltas` scans that table whole, and after a few runs
# it held 355,000 dead rows in 57 MB, read about six times a second (114 ms a fold against 20 on
# a fresh database). The empty side starts from a fresh database each run.
vacuum_seeded() {
  psql -q -h 127.0.0.1 -U postgres -d comms_seed -c "VACUUM (ANALYZE)" >/dev/null
}

run() { # run empty|seeded intake|e2e ROUND
  local worker=on e2e=()
  if [ "$1" = seeded ]; then DB=$SEEDED; export BENCH_KEEP_DATABASE=1; vacuum_seeded; else DB=$EMPTY; unset BENCH_KEEP_DATABASE; fi
  [ "$2" = intake ] && worker=off
  [ "$2" = e2e ] && e2e=(-database-url "$DB")
  start_stack 0 $worker
  measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -duration "$DURATION" -concurrency 128 -label "$1 $2 round $3" "${e2e[@]}"
  stop_stack
  # What an intake-only run left to send and to fold (its messages' intents, events and usage
  # deltas: no worker folded them) would be the next seeded run's backlog; an empty database
  # starts without one.
  [ "$1" = seeded ] && psql -q -h 127.0.0.1 -U postgres -d comms_seed -c "TRUNCATE communication.dispatch_queue, communication.event_outbox, communication.usage_deltas, communication.analytics_deltas" >/dev/null
  return 0
}
for round in $(seq 1 "$ROUNDS"); do
  for mode in intake e2e; do
    run empty "$mode" "$round"
    run seeded "$mode" "$round"
  done
done
unset BENCH_KEEP_DATABASE

hot=$(psql -qtA -h 127.0.0.1 -U postgres -d comms_seed -c "SELECT id FROM communication.tenants WHERE name = 'seed tenant 0'")
other=$(psql -qtA -h 127.0.0.1 -U postgres -d comms_seed -c "SELECT id FROM communication.tenants WHERE name = 'seed tenant 500'")
DB=$SEEDED BENCH_KEEP_DATABASE=1 start_stack 0 off
for tenant in "$hot" "$other"; do
  for _ in 1 2 3; do
    measured "$OUT" ./bin/loadgen reads -admin-key "$ADMIN" -tenant "$tenant" -duration 10s -concurrency 2
  done
done
stop_stack

awk '/^run "/ { side = $2 " " $3; sub(/^"/, "", side) }
  /delivered .*\/s overall/ { for (i = 1; i <= NF; i++) if ($i == "delivered") { v = $(i+1); sub(/\/s/, "", v); r[side] = r[side] " " v } }
  /^  intake: / { v = $0; sub(/.*accepted \(/, "", v); sub(/\/s.*/, "", v); a[side] = a[side] " " v }
  /intake latency ms:/ { for (i = 1; i <= NF; i++) if ($i == "p99") l[side] = l[side] " " $(i+1) }
  END { for (s in a) printf "%s: accepted/s%s; intake p99 ms%s; delivered/s%s\n", s, a[s], l[s], r[s] }' "$OUT" | tee -a "$OUT"
echo "results: $OUT"
