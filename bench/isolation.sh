#!/usr/bin/env bash
# make bench-isolation: tenant A's end-to-end figures alone, then with a noisy neighbour B whose
# provider answers 503 to every send, then with B's provider hanging 10 s on every send, while B
# sends at its own rate. Same dev stack and loadgen as bench/run.sh; docs/benchmarks.md has the
# results. The control run has B send through a provider that answers at once: the difference
# between it and A alone is the cost of B's traffic on shared machines, the difference between
# it and the 503 and hang runs is the cost of B's provider misbehaving.
#
# BENCH_DURATION (default 60s), ISO_RATE (A's rate, default 1000/s), NOISY_RATE (B's, default
# 500/s), NOISY_LIMIT (B's intake rate limit per second, as its plan would set it; default 0: the
# tenant default of 500/s, so all of B's traffic is accepted), BENCH_ROUNDS (default 1: how often
# the four scenarios run, interleaved; one more A-alone run closes the set). Each run sends (A and
# B) for BENCH_WARMUP (default 10s) before the measured window: in every scenario, A alone too,
# the stack's first seconds had A's p99 at ~200 ms against 50-90 ms afterwards, and that
# start-up, not B, decided a 60 s run's p99.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-60s}
WARMUP=${BENCH_WARMUP:-10s}
RATE=${ISO_RATE:-1000}
NOISY=${NOISY_RATE:-500}
LIMIT=${NOISY_LIMIT:-0}
ROUNDS=${BENCH_ROUNDS:-1}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=bench/results/isolation-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen
echo "# $(date -u) on $(nproc) cores; A at ${RATE}/s over 100 tenants, B at ${NOISY}/s (limit ${LIMIT}/s, 0: tenant default); ${DURATION} per run after ${WARMUP} of warm-up; broker ${BENCH_BROKER:-separate}" | tee "$OUT"

LOG=/tmp/comms-iso-dev.out
BENCH_LOG_LEVEL=error
. bench/lib.sh
lg() {
  measured "$OUT" ./bin/loadgen -admin-key "$ADMIN" -tenants 100 -rate "$RATE" -concurrency 256 -warmup "$WARMUP" -duration "$DURATION" -database-url "$DB" "$@"
}

# A fresh stack per scenario, so B's leftover retries never weigh on the next run. With
# BENCH_ROUNDS=N the four scenarios run N times, interleaved, so that a slow spell of the machine
# (the VM's disk stalls now and then for hundreds of ms; docs/benchmarks.md) lands on one run of a
# scenario rather than on all of them, and the summary compares medians.
for round in $(seq 1 "$ROUNDS"); do
  r=""; [ "$ROUNDS" -gt 1 ] && r="round $round: "
  start_stack 5 on; lg -label "${r}A alone"; stop_stack
  start_stack 5 on; lg -label "${r}A with B healthy (control)" -noisy ok -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
  start_stack 5 on; lg -label "${r}A with B answering 503" -noisy 503 -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
  start_stack 5 on; lg -label "${r}A with B hanging 10 s" -noisy hang -noisy-rate "$NOISY" -noisy-limit "$LIMIT"; stop_stack
done
start_stack 5 on; lg -label "A alone"; stop_stack

# Per scenario: A's accepted -> sent p99 in every run, their median, and that median against A
# alone's; and A's delivered rate, which B must not lower either.
awk '
  /^run "/ { label = $0; sub(/^run "(round [0-9]+: )?/, "", label); sub(/".*/, "", label) }
  /delivered .*\/s overall/ { for (i = 1; i <= NF; i++) if ($i == "delivered") { v = $(i+1); sub(/\/s/, "", v); rate[label] = rate[label] " " v } }
  /accepted -> sent ms:/ { for (i = 1; i <= NF; i++) if ($i == "p99") { n[label]++; p99[label, n[label]] = $(i+1); if (!(label in seen)) { seen[label] = 1; order[++k] = label } } }
  function median(l,   m, i, j, t, a) {
    m = n[l]; for (i = 1; i <= m; i++) a[i] = p99[l, i] + 0
    for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
    return m % 2 ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2
  }
  END {
    base = median("A alone")
    print "\nsummary: A'"'"'s accepted -> sent p99 (ms) per run, their median, the median against A alone'"'"'s; A'"'"'s delivered/s"
    for (i = 1; i <= k; i++) {
      l = order[i]; runs = ""
      for (j = 1; j <= n[l]; j++) runs = runs " " p99[l, j]
      printf "  %-30s %-28s median %6.1f  %.2fx   delivered/s:%s\n", l, runs, median(l), median(l) / base, rate[l]
    }
  }' "$OUT" | tee -a "$OUT"
echo "results: $OUT"
