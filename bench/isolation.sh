#!/usr/bin/env bash
# make bench-isolation: tenant A's end-to-end figures alone, then with a noisy neighbour B whose
# provider answers 503 to every send, then with B's provider hanging 10 s on every send, while B
# sends at its own rate. Same dev stack and loadgen as bench/run.sh; docs/benchmarks.md has the
# results. The control run has B send through a provider that answers at once: the difference
# between it and A alone is the cost of B's traffic on shared machines, the difference between
# it and the 503 and hang runs is the cost of B's provider misbehaving. BENCH_DURATION (default 60s), ISO_RATE (A's rate, default 1000/s), NOISY_RATE (B's,
# default 500/s).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-60s}
RATE=${ISO_RATE:-1000}
NOISY=${NOISY_RATE:-500}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=bench/results/isolation-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen
echo "# $(date -u) on $(nproc) cores; A at ${RATE}/s over 100 tenants, B at ${NOISY}/s; ${DURATION} per run" | tee "$OUT"

stack_pid=""
start_stack() {
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" >/dev/null
  COMMS_DATABASE_URL=$DB COMMS_DEV_KAFKA_PORT=0 COMMS_DEV_SANDBOX_LATENCY_MS=5 COMMS_LOG_LEVEL=error \
    COMMS_DB_MAX_CONNS=${BENCH_DB_CONNS:-24} ./bin/dev > /tmp/comms-iso-dev.out 2>&1 &
  stack_pid=$!
  for _ in $(seq 1 60); do grep -q '^admin key:' /tmp/comms-iso-dev.out && break; sleep 0.5; done
  ADMIN=$(awk '/^admin key:/{print $3}' /tmp/comms-iso-dev.out)
  [ -n "$ADMIN" ] || { cat /tmp/comms-iso-dev.out; exit 1; }
}
stop_stack() { kill -TERM "$stack_pid"; wait "$stack_pid" || true; }
trap 'kill -TERM $stack_pid 2>/dev/null || true' EXIT
cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5, $9}' /proc/stat; }
lg() {
  local before after
  before=$(cpu)
  ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -rate "$RATE" -concurrency 256 -duration "$DURATION" -database-url "$DB" "$@" | tee -a "$OUT"
  after=$(cpu)
  echo "$before $after" | awk '{t=$4-$1; printf "  machine during the run: %.1f%% idle, %.1f%% stolen by the hypervisor\n", 100*($5-$2)/t, 100*($6-$3)/t}' | tee -a "$OUT"
}

# A fresh stack per scenario, so B's leftover retries never weigh on the next run.
start_stack; lg -label "A alone (baseline)"; stop_stack
start_stack; lg -label "A, with B sending through a healthy provider (control)" -noisy ok -noisy-rate "$NOISY"; stop_stack
start_stack; lg -label "A, with B's provider answering 503" -noisy 503 -noisy-rate "$NOISY"; stop_stack
start_stack; lg -label "A, with B's provider hanging 10 s" -noisy hang -noisy-rate "$NOISY"; stop_stack
start_stack; lg -label "A alone (baseline, again)"; stop_stack
echo "results: $OUT"
