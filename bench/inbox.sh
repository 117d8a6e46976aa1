#!/usr/bin/env bash
# bench/inbox.sh: the in-app inbox's live streams (docs/benchmarks.md): BENCH_STREAMS (default
# 1,000) streams open on the dev stack's one API process, BENCH_MESSAGES (2,000) in_app messages
# at BENCH_RATE (200) a second, for BENCH_ROUNDS (3) rounds on a fresh database each; prints each
# round's 202 → stream event latency and the API process's resident memory per open stream.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=$PWD/bench/results/inbox-$(date -u +%Y%m%dT%H%M%SZ).txt
LOG=/tmp/comms-inbox-dev.out
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen
. bench/lib.sh
# A stream is a connection and a descriptor on each side.
ulimit -n "$(ulimit -Hn)"
echo "# $(date -u): inbox streams at $(git rev-parse --short HEAD), $ROUNDS rounds" | tee "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  start_stack 0 on
  measured "$OUT" ./bin/loadgen inbox -admin-key "$ADMIN" -streams "${BENCH_STREAMS:-1000}" \
    -messages "${BENCH_MESSAGES:-2000}" -rate "${BENCH_RATE:-200}"
  stop_stack
done
