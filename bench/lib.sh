# Shared by bench/run.sh and bench/isolation.sh: start and stop the dev stack on a fresh database,
# and report the machine's idle and stolen CPU around a loadgen run. Source it; set DB and LOG.

stack_pid=""
broker_pid=""
# start_stack LATENCY_MS WORKER(on|off): the dev runner on a fresh comms_bench database; sets ADMIN.
# With BENCH_BROKER=separate (the default) the broker runs in a process of its own, as Kafka does
# in production: kfake keeps every record in memory, and embedded in the services' process its log
# (30 of 65 MB live in session 10's hang runs) was scanned by their garbage collector on their
# time. BENCH_BROKER=embedded runs everything in one process, as before session 11.
# With BENCH_KEEP_DATABASE set, $DB is used as it is (a seeded history, bench/atsize.sh), not
# dropped and made afresh.
start_stack() {
  [ -n "${BENCH_KEEP_DATABASE:-}" ] || psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS comms_bench WITH (FORCE)" >/dev/null
  # Each run starts from the same state: the previous run's dirty pages and WAL are flushed now,
  # not by a checkpoint in the middle of this run.
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CHECKPOINT" >/dev/null
  local brokers=""
  if [ "${BENCH_BROKER:-separate}" = separate ]; then
    COMMS_DEV_BROKER_ONLY=true COMMS_DEV_KAFKA_PORT=0 COMMS_DATABASE_URL=$DB ./bin/dev > "$LOG.broker" 2>&1 &
    broker_pid=$!
    for _ in $(seq 1 60); do grep -q '^kafka:' "$LOG.broker" && break; sleep 0.2; done
    brokers=$(awk '/^kafka:/{print $2}' "$LOG.broker")
    [ -n "$brokers" ] || { cat "$LOG.broker"; exit 1; }
  fi
  COMMS_KAFKA_BROKERS=$brokers COMMS_REDIS_PREFIX=comms-bench: COMMS_DATABASE_URL=$DB COMMS_DEV_KAFKA_PORT=0 COMMS_DEV_SANDBOX_LATENCY_MS=$1 COMMS_DEV_WORKER=$2 \
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
  if [ -n "$broker_pid" ]; then kill -TERM "$broker_pid"; wait "$broker_pid" || true; broker_pid=""; fi
  redis-cli --scan --pattern 'comms-bench:*' | xargs -r -n 1000 redis-cli unlink > /dev/null
}
trap 'kill -TERM $stack_pid $broker_pid 2>/dev/null || true' EXIT

# The machine is a VM: report how much CPU the hypervisor stole and how much stayed idle during
# each run, and how long every running task waited on I/O at once (PSI's "full" I/O time). With
# synchronous commits that is mostly commits waiting for their WAL flush (about 0.9 s a run here),
# and more when the VM's disk stalls: one stall of ~600 ms was seen with PostgreSQL idle and the
# whole stack waiting on it, and such a stall decides a run's p99 (docs/benchmarks.md, isolation).
cpu() {
  local io=0
  [ -r /proc/pressure/io ] && io=$(awk '/^full/{sub("total=", "", $5); print $5}' /proc/pressure/io)
  awk -v io="$io" '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5, $9, io}' /proc/stat
}
# measured OUT COMMAND...: runs the command, appending its output and the machine's conditions to OUT.
measured() {
  local out=$1 before after
  shift
  before=$(cpu)
  "$@" | tee -a "$out"
  after=$(cpu)
  echo "$before $after" | awk '{t=$5-$1; printf "  machine during the run: %.1f%% idle, %.1f%% stolen by the hypervisor, %.0f ms stalled on I/O\n", 100*($6-$2)/t, 100*($7-$3)/t, ($8-$4)/1000}' | tee -a "$out"
}
