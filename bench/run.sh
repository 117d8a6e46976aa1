#!/usr/bin/env bash
# make bench: runs the dev stack (embedded broker, PostgreSQL, Redis, api, worker: all on this
# machine) against a fresh database and drives it with cmd/loadgen. Results go to stdout and
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
  echo "# everything co-located: PostgreSQL $(psql -V | awk '{print $3}'), Redis, kfake broker, api, worker, loadgen"
} | tee "$OUT"

stack_pid=""
start_stack() { # $1: sandbox latency ms, $2: worker on|off
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" >/dev/null
  COMMS_DATABASE_URL=$DB COMMS_DEV_KAFKA_PORT=0 COMMS_DEV_SANDBOX_LATENCY_MS=$1 COMMS_DEV_WORKER=$2 \
    COMMS_DB_MAX_CONNS=${BENCH_DB_CONNS:-24} COMMS_LOG_LEVEL=warn ./bin/dev > /tmp/comms-bench-dev.out 2>&1 &
  stack_pid=$!
  for _ in $(seq 1 60); do grep -q '^admin key:' /tmp/comms-bench-dev.out && break; sleep 0.5; done
  ADMIN=$(awk '/^admin key:/{print $3}' /tmp/comms-bench-dev.out)
  [ -n "$ADMIN" ] || { cat /tmp/comms-bench-dev.out; exit 1; }
}
stop_stack() { kill -TERM "$stack_pid"; wait "$stack_pid" || true; }
trap 'kill -TERM $stack_pid 2>/dev/null || true' EXIT

# The machine is a VM: report how much CPU the hypervisor stole and how much stayed idle during
# each run, so a figure can be read with its conditions.
cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5, $9}' /proc/stat; }
lg() {
  local before after
  before=$(cpu)
  ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -duration "$DURATION" "$@" | tee -a "$OUT"
  after=$(cpu)
  echo "$before $after" | awk '{t=$4-$1; printf "  machine during the run: %.1f%% idle, %.1f%% stolen by the hypervisor\n", 100*($5-$2)/t, 100*($6-$3)/t}' | tee -a "$OUT"
}

echo "== intake alone (no worker)" | tee -a "$OUT"
start_stack 0 off
lg -label "intake max" -concurrency 128
lg -label "intake at 2000/s" -rate 2000 -concurrency 256
stop_stack

echo "== end to end, sandbox answering at once" | tee -a "$OUT"
start_stack 0 on
lg -label "e2e max" -concurrency 128 -database-url "$DB"
lg -label "e2e at 1000/s" -rate 1000 -concurrency 256 -database-url "$DB"
stop_stack

echo "== end to end, sandbox answering after 100 ms" | tee -a "$OUT"
start_stack 100 on
lg -label "e2e max, 100 ms provider" -concurrency 128 -database-url "$DB"
stop_stack
echo "results: $OUT"
