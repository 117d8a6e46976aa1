package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/logicspike/comms/pkg/ids"
)

// How the hot path's statements reach the history by key: planned without scans, on a plan cached
// or made for each batch, and on the week's partition named directly where a batch is in one week.

// undefinedTable is PostgreSQL's SQLSTATE for a relation that does not exist.
const undefinedTable = "42P01"

// byKey plans the statements after it, to the end of their transaction, without sequential
// scans, hash joins or merge joins. A statement that joins a batch of messages to message_logs
// (or their events) by key probes one partition's index per message once runtime pruning has
// removed the other weeks, but the planner costs each probe as if every partition were searched
// and, while the weeks are of modest size, prefers reading them whole. Those costs (and the
// disabled kinds') also pass jit_above_cost on a history at size, and JIT compilation then took
// most of a millisecond statement's 129 ms: it is off too (as migration 0042 sets it for the
// database, where the role may).
const byKey = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)`

// keyedTx runs fn in a transaction planned by key (byKey).
func (s *Store) keyedTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, byKey); err != nil {
			return err
		}
		return fn(tx)
	})
}

// replannedByKey is byKey for a statement PostgreSQL must plan for each batch (a custom plan),
// never from a cached generic one. The claim's update joins its batch to message_logs by key,
// with the batch's time range beside the key for pruning. A generic plan made while the week was
// nearly empty (every Monday, and on a new database) finds reading that range from an index
// cheaper than probing each message, and keeps that plan as the week grows until the week is
// next analysed (never, with autovacuum off). The range bounds no index's leading column, so
// each claim then reads the whole week's index: 290 pages, 8 ms for 3 messages (auto_explain in
// an end-to-end run); 172 against 121 µs a message replanned (pg_stat_statements). A custom plan
// sees the week as it is now.
const replannedByKey = byKey + `, set_config('plan_cache_mode', 'force_custom_plan', true)`

// collectByKey runs query after byKey in one round trip (a batch is one implicit transaction) and
// collects its rows with scan. The statement is prepared on the connection under its own text,
// which the batch then uses, so that PostgreSQL keeps its plan (see cachedPlan): planning the hot
// path's statements for every batch costs much of their time.
func collectByKey[T any](ctx context.Context, s *Store, scan pgx.RowToFunc[T], query string, args ...any) ([]T, error) {
	return collectAfter(ctx, s, byKey, scan, query, args...)
}

// collectAfter is collectByKey with setup (byKey or replannedByKey) before the statement.
func collectAfter[T any](ctx context.Context, s *Store, setup string, scan pgx.RowToFunc[T], query string, args ...any) ([]T, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	if _, err := c.Conn().Prepare(ctx, query, query); err != nil { // idempotent: one round trip per connection
		return nil, err
	}
	b := &pgx.Batch{}
	b.Queue(setup)
	b.Queue(query, args...)
	br := c.SendBatch(ctx, b)
	defer br.Close() //nolint:errcheck // the statements' errors are returned below
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scan)
}

// timeBounds are the earliest and latest of ts that are not zero (both zero if none is). Passed as
// a range on created_at beside each key's own time, they let PostgreSQL prune the history to the
// weeks a batch is in while planning, as `= ANY(times)` does, but at the cost of two comparisons
// instead of one selectivity estimate a time (0.59 against 0.35 ms to plan a claim of 35 messages
// on a 10,000,000-message history), and, in a cached generic plan, when the executor starts.
func timeBounds(ts []time.Time) (lo, hi time.Time) {
	for _, t := range ts {
		if t.IsZero() {
			continue
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	return lo, hi
}

// madeTimes are the instants msgIDs carry, in their order: the created_at of their rows
// (migration 0027). An id that carries none (made by hand, not by comms) gets the zero time, which
// no week holds.
func madeTimes(msgIDs []string) []time.Time {
	out := make([]time.Time, len(msgIDs))
	for i, id := range msgIDs {
		out[i], _ = ids.SortableTime(id, ids.Message)
	}
	return out
}

// inWeek runs a statement on table, a partitioned history table, through run, which it gives the
// name to use: the partition of the UTC week that holds every one of times when they fall in one
// week (almost every batch), otherwise the partitioned table. Named directly, the week costs
// PostgreSQL no partition pruning or routing to plan and run: a worker's claim and outcome ran a
// quarter faster so with the 15 weeks of a 90-day history (BenchmarkClaimAndFinish). A week
// without a partition (dropped by retention, or never made) holds none of the messages: the
// statement runs again on the partitioned table, which finds none of them, as it always did.
func inWeek[T any](table string, times []time.Time, run func(tbl string) (T, error)) (T, error) {
	parent, tbl := "communication."+table, weekTable(table, times)
	out, err := run(tbl)
	var pe *pgconn.PgError
	if err != nil && tbl != parent && errors.As(err, &pe) && pe.Code == undefinedTable {
		return run(parent)
	}
	return out, err
}

// weekTable is the name inWeek gives run: table's partition for the one week of times, or table.
func weekTable(table string, times []time.Time) string {
	if monday, ok := oneWeek(times); ok {
		return "communication." + table + "_p" + monday.Format("20060102") // create_partitions' names
	}
	return "communication." + table
}

// oneWeek is the Monday (UTC) of the week that holds every one of ts that is not zero, and false
// when they span weeks or are all zero (madeTimes' ids that carry no time).
func oneWeek(ts []time.Time) (time.Time, bool) {
	const day = 24 * 60 * 60
	week := int64(-1)
	for _, t := range ts {
		if t.IsZero() {
			continue
		}
		// 1970-01-01 was a Thursday: days since then, plus 3, count weeks from Monday.
		w := (t.Unix()/day + 3) / 7
		if week >= 0 && w != week {
			return time.Time{}, false
		}
		week = w
	}
	if week < 0 {
		return time.Time{}, false
	}
	return time.Unix((week*7-3)*day, 0).UTC(), true
}
