#!/usr/bin/env bash
# bench/erase.sh [REF]: erasing a person beside intake (docs/benchmarks.md). Loads BENCH_MESSAGES
# (2,000,000) messages over 90 days for 1,000 tenants, one hot with 20%, into a fresh comms_erase
# database (`loadgen seed`), with BENCH_ROUNDS (3) people per tree among the hot tenant's messages,
# each the recipient of 10,000 of them. It then runs the dev stack (intake only: the erasure is run
# by `loadgen erase`, with the eraser the workers run) and, each round, loadgen at
# BENCH_INTAKE_RATE (2,000/s) twice for BENCH_INTAKE_WINDOW (8s) after 5 s of warm-up: quiet, then
# with one person's erasure starting as the measured window does. It prints both runs' intake
# latencies and the erasure's time. With REF, each round erases one person with REF's eraser and
# one with this tree's, each beside its own quiet run (interleaved, as bench/compare.sh does).
# BENCH_ERASE_ARGS are passed to `loadgen erase` (its -batch and -busy: the eraser's settings);
# BENCH_SEED_ARGS to `loadgen seed` (-hot-webhook: the hot tenant's events delivered to an endpoint).
# BENCH_SETTINGS="wal_compression=off wal_compression=lz4" (without REF) instead alternates the
# server's settings between those values, each round, with this tree (ALTER SYSTEM and a reload,
# reset at the end). A setting that takes a restart (shared_buffers=2GB) restarts the server and
# the dev stack with it, by BENCH_PG_RESTART (default: pg_ctlcluster on the first cluster
# pg_lsclusters lists). Each run prints the WAL bytes and full-page images
# written in it. BENCH_WAITS=1 also samples what PostgreSQL's busy sessions wait on during each
# measured window (pg_stat_activity every 10 ms) and prints the counts, by statement.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
REF=${1:-}
RATE=${BENCH_INTAKE_RATE:-2000}
WINDOW=${BENCH_INTAKE_WINDOW:-8s}
DB=postgres://postgres@127.0.0.1:5432/comms_erase?sslmode=disable
OUT=$PWD/bench/results/erase-$(date -u +%Y%m%dT%H%M%SZ).txt
LOG=/tmp/comms-erase-dev.out
mkdir -p bench/results bin
export COMMS_ENCRYPTION_KEYS=${COMMS_ENCRYPTION_KEYS:-v1:$(openssl rand -base64 32)} # commsctl's start-up check
. bench/lib.sh

go build -o bin/ ./cmd/commsctl ./cmd/loadgen ./cmd/dev
trees=(.)
if [ -n "$REF" ]; then
  ref_dir=$(mktemp -d)
  git worktree add -q --detach "$ref_dir" "$REF"
  trap 'kill -TERM $stack_pid $broker_pid 2>/dev/null || true; git worktree remove --force "$ref_dir"' EXIT
  (cd "$ref_dir" && go build -o bin/ ./cmd/loadgen)
  trees=("$ref_dir" .)
fi
PG_RESTART=${BENCH_PG_RESTART:-pg_ctlcluster $(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 {print $1, $2}') restart}
# needs_restart NAME: whether a change to the setting NAME takes a server restart.
needs_restart() {
  [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT context FROM pg_settings WHERE name = '$1'")" = postmaster ]
}
# restart_server: restarts PostgreSQL and waits until it takes connections.
restart_server() {
  $PG_RESTART
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 && return; sleep 0.5; done
  echo "PostgreSQL did not come back after: $PG_RESTART"; exit 1
}
# apply_setting NAME=VALUE: sets it for the server, restarting the server and the dev stack when a
# reload does not apply it.
apply_setting() {
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "ALTER SYSTEM SET ${1%%=*} = '${1#*=}'" -c "SELECT pg_reload_conf()" >/dev/null
  if needs_restart "${1%%=*}" && [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atc "SHOW ${1%%=*}")" != "${1#*=}" ]; then
    stop_stack
    restart_server
    BENCH_KEEP_DATABASE=1 start_stack 0 off
  fi
}
reset_settings() {
  local args=() s restart=""
  for s in "${settings[@]}"; do
    args+=(-c "ALTER SYSTEM RESET ${s%%=*}")
    needs_restart "${s%%=*}" && restart=1
  done
  psql -q -h 127.0.0.1 -U postgres -d postgres "${args[@]}" -c "SELECT pg_reload_conf()" >/dev/null
  if [ -n "$restart" ]; then restart_server; fi
}
# shellcheck disable=SC2206 # BENCH_SETTINGS is a list of words
settings=(${BENCH_SETTINGS:-})
if [ ${#settings[@]} -gt 0 ]; then
  trees=("${settings[@]}")
  trap 'kill -TERM $stack_pid $broker_pid 2>/dev/null || true; reset_settings' EXIT
fi
# waits FILE: counts what busy sessions wait on (CPU when on none) and the statement, over the
# measured window that starts 5 s from now.
waits() {
  sleep 5
  for _ in $(seq 1 700); do
    echo "SELECT coalesce(wait_event_type, 'CPU') || ' ' || coalesce(wait_event, '-') || ' | ' || regexp_replace(left(query, 60), '\s+', ' ', 'g')
      FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid(); SELECT pg_sleep(0.01);"
  done | psql -h 127.0.0.1 -U postgres -d comms_erase -At 2>/dev/null | grep -v '^$' | sort | uniq -c | sort -rn | head -15 > "$1"
}
# window OUT LABEL: one measured loadgen run, with its waits when BENCH_WAITS is set.
window() {
  local sampler=""
  if [ -n "${BENCH_WAITS:-}" ]; then waits /tmp/comms-erase-waits.txt & sampler=$!; fi
  measured "$1" "${lg[@]}" -label "$2"
  if [ -n "$sampler" ]; then wait "$sampler"; echo "  waits of busy sessions (10 ms samples):" | tee -a "$1"; sed 's/^/    /' /tmp/comms-erase-waits.txt | tee -a "$1"; fi
}
wal() { psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT wal_bytes || ' ' || wal_fpi FROM pg_stat_wal"; }
walline='{printf "  WAL written in the run: %.0f MB, %d full-page images\n", ($3-$1)/1e6, $4-$2}'

people=()
for i in $(seq 1 $((ROUNDS * ${#trees[@]}))); do people+=("+1415555$(printf %04d "$i")"); done
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_erase WITH (FORCE)" -c "CREATE DATABASE comms_erase" >/dev/null
COMMS_DATABASE_URL=$DB ./bin/commsctl migrate > /dev/null
# shellcheck disable=SC2086 # BENCH_SEED_ARGS is words for loadgen seed (-hot-webhook)
seeded=$(./bin/loadgen seed -database-url "$DB" -messages "${BENCH_MESSAGES:-2000000}" -days 90 -tenants 1000 -hot-share 0.2 \
  -persons "$(IFS=,; echo "${people[*]}")" ${BENCH_SEED_ARGS:-} 2>/dev/null | grep 'the hot one')
hot=$(echo "$seeded" | sed -n 's/.*(the hot one: \([^)]*\)).*/\1/p')
[ -n "$hot" ] || { echo "no hot tenant in: $seeded"; exit 1; }
psql -q -h 127.0.0.1 -U postgres -d comms_erase -c "VACUUM ANALYZE" >/dev/null
echo "# $(date -u): $(git rev-parse --short HEAD), $seeded; $ROUNDS rounds, intake at $RATE/s for $WINDOW" | tee -a "$OUT"

BENCH_KEEP_DATABASE=1 start_stack 0 off
lg=(./bin/loadgen -admin-key "$ADMIN" -tenants 10 -rate "$RATE" -duration "$WINDOW" -warmup 5s)
n=0
for round in $(seq 1 "$ROUNDS"); do
  for dir in "${trees[@]}"; do
    if [ ${#settings[@]} -gt 0 ]; then
      name=$dir
      apply_setting "$dir"
      dir=.
    else
      name=$( [ "$dir" = . ] && echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +tree)" || git -C "$dir" rev-parse --short HEAD )
    fi
    person=${people[$n]}
    n=$((n + 1))
    # Each run starts from what autovacuum, which is off on this machine class, would have left.
    psql -q -h 127.0.0.1 -U postgres -d comms_erase -c "VACUUM" -c "CHECKPOINT" >/dev/null
    before=$(wal)
    window "$OUT" "$name round $round quiet"
    echo "$before $(wal)" | awk "$walline" | tee -a "$OUT"
    psql -q -h 127.0.0.1 -U postgres -d comms_erase -c "VACUUM" -c "CHECKPOINT" >/dev/null
    # shellcheck disable=SC2086 # BENCH_ERASE_ARGS is words for loadgen erase (-batch 250)
    (sleep 5; "$dir/bin/loadgen" erase -database-url "$DB" -tenant "$hot" -recipient "$person" ${BENCH_ERASE_ARGS:-} > /tmp/comms-erase-took.txt) &
    eraser=$!
    before=$(wal)
    window "$OUT" "$name round $round during an erasure"
    wait "$eraser"
    sed "s/^/  $name: /" /tmp/comms-erase-took.txt | tee -a "$OUT"
    echo "$before $(wal)" | awk "$walline" | tee -a "$OUT"
  done
done
stop_stack

awk '/^run "/ { side = $0; sub(/^run "/, "", side); sub(/".*/, "", side); sub(/ round [0-9]+/, "", side) }
  /intake latency ms:/ { for (i = 1; i <= NF; i++) if ($i == "p99") l[side] = l[side] " " $(i+1) }
  / erasure .* in / { for (i = 1; i <= NF; i++) if ($i == "in") { v = $(i+1); sub(/:$/, "", v); e[$1] = e[$1] " " v } }
  END { for (s in l) printf "%s: intake p99 ms%s\n", s, l[s]; for (t in e) printf "%s erasures took%s\n", t, e[t] }' "$OUT" | sort | tee -a "$OUT"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_erase WITH (FORCE)" >/dev/null
echo "results: $OUT"
