#!/usr/bin/env bash
# bench/push.sh: push fan-out (docs/benchmarks.md): BENCH_RECIPIENTS (default 10,000) profiles with
# BENCH_DEVICES (2) devices each on a push service loadgen runs (answering at once), one push
# message per profile, for BENCH_ROUNDS (3) rounds on a fresh database each; prints each round's
# deliveries a second. BENCH_PLATFORM is webpush (the default) or fcm.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
DB=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/comms_bench?sslmode=disable}
OUT=$PWD/bench/results/push-$(date -u +%Y%m%dT%H%M%SZ).txt
LOG=/tmp/comms-push-dev.out
mkdir -p bench/results bin
go build -o bin/ ./cmd/dev ./cmd/loadgen
. bench/lib.sh
PLATFORM=${BENCH_PLATFORM:-webpush}
if [ "$PLATFORM" = fcm ]; then
  # The stack sends to the FCM loadgen serves.
  export COMMS_FCM_BASE_URL=http://127.0.0.1:4010 COMMS_FCM_TOKEN_URL=http://127.0.0.1:4010/token
fi
echo "# $(date -u): push fan-out ($PLATFORM) at $(git rev-parse --short HEAD), $ROUNDS rounds" | tee "$OUT"
for round in $(seq 1 "$ROUNDS"); do
  start_stack 0 on
  measured "$OUT" ./bin/loadgen push -admin-key "$ADMIN" -recipients "${BENCH_RECIPIENTS:-10000}" -devices "${BENCH_DEVICES:-2}" -platform "$PLATFORM"
  stop_stack
done
