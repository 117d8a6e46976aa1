#!/usr/bin/env bash
# make bench: runs the dev stack (kfake broker, PostgreSQL, Redis, api, worker: all on this
# machine; the broker in a process of its own unless BENCH_BROKER=embedded, bench/lib.sh) against
# a fresh database and drives it with cmd/loadgen. Results go to stdout and
# bench/results/<timestamp>.txt; docs/benchmarks.md records them with the machine's conditions.
#
# BENCH_DURATION (default 60s) shortens every run for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-60s}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen

{
  echo "# $(date -u) on $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version)"
  echo "# everything co-located: PostgreSQL $(psql -V | awk '{print $3}'), Redis, kfake broker (${BENCH_BROKER:-separate}), api, worker, loadgen"
} | tee "$OUT"

LOG=/tmp/comms-bench-dev.out
. bench/lib.sh
lg() { measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -duration "$DURATION" "$@"; }

# Each target scenario starts from the same state, a fresh stack.
echo "== intake alone (no worker)" | tee -a "$OUT"
start_stack 0 off
lg -label "intake at 2000/s" -rate 2000 -concurrency 256
stop_stack
start_stack 0 off
lg -label "intake max" -concurrency 128
# Not a target: the same rate again with the max run's 300k+ messages still queued (no worker),
# their dead rows (autovacuum is off on this machine class) and the broker holding them all in
# memory.
lg -label "intake at 2000/s, behind the max run's backlog" -rate 2000 -concurrency 256
stop_stack
# The same intake, recipients sent in batches of 1,000 (POST /v1/messages/batch): accepted/s
# counts recipients, to compare with "intake max".
start_stack 0 off
lg -label "intake max, batches of 1000" -concurrency 8 -batch 1000
stop_stack

echo "== end to end, sandbox answering at once" | tee -a "$OUT"
start_stack 0 on
lg -label "e2e max" -concurrency 128 -database-url "$DB"
lg -label "e2e at 1000/s" -rate 1000 -concurrency 256 -database-url "$DB"
stop_stack

echo "== scheduled sends, sandbox answering at once" | tee -a "$OUT"
start_stack 0 on
measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -label "1,000 due the same second" -scheduled 1000 -database-url "$DB"
measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -label "20,000 due the same second" -scheduled 20000 -database-url "$DB"
stop_stack

echo "== end to end, sandbox answering after 100 ms" | tee -a "$OUT"
start_stack 100 on
lg -label "e2e max, 100 ms provider" -concurrency 128 -database-url "$DB"
stop_stack
echo "results: $OUT"
