#!/usr/bin/env bash
# Webhook delivery figures (docs/benchmarks.md), from the Go benchmarks in internal/webhooks on an
# in-process stack (PostgreSQL, Redis, the kfake broker and a local sink, all on this machine):
#   - throughput: 20,000 events of 10 tenants waiting on comms.events, drained by one Deliverer;
#   - isolation: tenant A at 500 events/s alone and beside tenant B at 500/s to an endpoint that
#     never answers, fresh stack each, 3 rounds interleaved inside the benchmark;
#   - a Twilio callback at idle until the tenant's endpoint has its event (production intervals).
# BENCH_ROUNDS (default 3) rounds of throughput and callback latency, interleaved.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
OUT=bench/results/webhooks-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results bin
go test -c -o bin/webhooks.test ./internal/webhooks
. bench/lib.sh
echo "# $(date -u) on $(nproc) cores" | tee "$OUT"
bench() { measured "$OUT" ./bin/webhooks.test -test.run '^$' -test.bench "$1" -test.benchtime "$2" -test.v; }
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round" | tee -a "$OUT"
  bench '^BenchmarkDeliveryThroughput$' 20000x
  bench '^BenchmarkCallbackToEndpoint$' 1x
done
bench '^BenchmarkIsolation$' 1x
echo "results: $OUT"
