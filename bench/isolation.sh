#!/usr/bin/env bash
# make bench-isolation: tenant A's end-to-end figures alone, then with a noisy neighbour B whose
# provider answers 503 to every send, then with B's provider hanging 10 s on every send, while B
# sends at its own rate. Same dev stack and loadgen as bench/run.sh; docs/benchmarks.md has the
# results. The control run has B send through a provider that answers at once: the difference
# between it and A alone is the cost of B's traffic on shared machines, the difference between
# it and the 503 and hang runs is the cost of B's provider misbehaving. BENCH_DURATION (default 60s), ISO_RATE (A's rate, default 1000/s), NOISY_RATE (B's,
# default 500/s), NOISY_LIMIT (B's intake rate limit per second, as its plan would set it; default
# 0: the tenant default of 500/s, so all of B's traffic is accepted). Each run sends (A and B) for BENCH_WARMUP (default 10s) before the measured
# window: in every scenario, A alone too, the stack's first seconds had A's p99 at ~200 ms
# against 50-90 ms afterwards, and that start-up, not B, decided a 60 s run's p99.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-60s}
WARMUP=${BENCH_WARMUP:-10s}
RATE=${ISO_RATE:-1000}
NOISY=${NOISY_RATE:-500}
LIMIT=${NOISY_LIMIT:-0}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=bench/results/isolation-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen
echo "# $(date -u) on $(nproc) cores; A at ${RATE}/s over 100 tenants, B at ${NOISY}/s (limit ${LIMIT}/s, 0: tenant default); ${DURATION} per run after ${WARMUP} of warm-up" | tee "$OUT"

LOG=/tmp/comms-iso-dev.out
BENCH_LOG_LEVEL=error
. bench/lib.sh
lg() {
  measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -rate "$RATE" -concurrency 256 -warmup "$WARMUP" -duration "$DURATION" -database-url "$DB" "$@"
}

# A fresh stack per scenario, so B's leftover retries never weigh on the next run.
start_stack 5 on; lg -label "A alone (baseline)"; stop_stack
start_stack 5 on; lg -label "A, with B sending through a healthy provider (control)" -noisy ok -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
start_stack 5 on; lg -label "A, with B's provider answering 503" -noisy 503 -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
start_stack 5 on; lg -label "A, with B's provider hanging 10 s" -noisy hang -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
start_stack 5 on; lg -label "A alone (baseline, again)"; stop_stack
echo "results: $OUT"
