# Shared by bench/run.sh and bench/isolation.sh: start and stop the dev stack on a fresh database,
# and report the machine's idle and stolen CPU around a loadgen run. Source it; set DB and LOG.

stack_pid=""
# start_stack LATENCY_MS WORKER(on|off): the dev runner on a fresh comms_bench database; sets ADMIN.
start_stack() {
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" >/dev/null
  # Each run starts from the same state: the previous run's dirty pages and WAL are flushed now,
  # not by a checkpoint in the middle of this run.
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CHECKPOINT" >/dev/null
  COMMS_REDIS_PREFIX=comms-bench: COMMS_DATABASE_URL=$DB COMMS_DEV_KAFKA_PORT=0 COMMS_DEV_SANDBOX_LATENCY_MS=$1 COMMS_DEV_WORKER=$2 \
    COMMS_DB_MAX_CONNS=${BENCH_DB_CONNS:-24} COMMS_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn} ./bin/dev > "$LOG" 2>&1 &
  stack_pid=$!
  for _ in $(seq 1 60); do grep -q '^admin key:' "$LOG" && break; sleep 0.5; done
  ADMIN=$(awk '/^admin key:/{print $3}' "$LOG")
  [ -n "$ADMIN" ] || { cat "$LOG"; exit 1; }
}
# The run's idempotency keys would stay in Redis for 24 hours (a million per make bench), and every
# later SCAN on this machine (the tests' cleanup) would wade through them.
stop_stack() {
  kill -TERM "$stack_pid"; wait "$stack_pid" || true
  redis-cli --scan --pattern 'comms-bench:*' | xargs -r -n 1000 redis-cli unlink > /dev/null
}
trap 'kill -TERM $stack_pid 2>/dev/null || true' EXIT

# The machine is a VM: report how much CPU the hypervisor stole and how much stayed idle during
# each run, so a figure can be read with its conditions.
cpu() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5, $9}' /proc/stat; }
# measured OUT COMMAND...: runs the command, appending its output and the machine's conditions to OUT.
measured() {
  local out=$1 before after
  shift
  before=$(cpu)
  "$@" | tee -a "$out"
  after=$(cpu)
  echo "$before $after" | awk '{t=$4-$1; printf "  machine during the run: %.1f%% idle, %.1f%% stolen by the hypervisor\n", 100*($5-$2)/t, 100*($6-$3)/t}' | tee -a "$out"
}
