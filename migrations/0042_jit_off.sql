-- JIT compilation off for the database's sessions (docs/operations.md#managed-postgresql). comms runs
-- short statements by key; over a history at size the planner's cost estimates for them (every
-- week's partition, and the disabled scan kinds of the keyed transactions) pass jit_above_cost,
-- and compiling then took ~106 ms of a 129 ms outbox read on a 10-million-message history, a
-- read that finds nothing in a millisecond. A database default, not a connection parameter, so
-- that it holds behind PgBouncer. A role that may not alter the database keeps its setting and
-- is told so; the keyed transactions turn JIT off for themselves either way (store's byKey).
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'jit is left as it is: this role may not ALTER DATABASE %; run it as the owner (docs/operations.md#managed-postgresql)', current_database();
END
$$;
