// Package store is the only place that speaks SQL. Every method that touches tenant data takes the
// tenant id as a required argument, so no query can forget to scope by it.
package store

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row does not exist for the given tenant.
var ErrNotFound = errors.New("not found")

// cachedPlan, passed before a statement's arguments, has the connection prepare the statement, so
// that PostgreSQL may cache its plan (generic after five runs, where plan_cache_mode is auto)
// instead of planning every batch. Every other statement is planned for its own arguments (see
// db.Open). Only for statements no plan of which can scan a growing table: each looks its rows up
// by key behind OFFSET 0, and TestDispatchStatementsDoNotScanMessageLogsAsItGrows runs them on
// their generic plans.
const cachedPlan = pgx.QueryExecModeCacheStatement

// Store wraps the pool.
type Store struct {
	pool    *pgxpool.Pool
	hashKey atomic.Pointer[[]byte] // the recipient hash key, read once (erasures.go)
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// anyDue reports whether query, an EXISTS over a queue's partial index, finds work. The pollers
// ask it before their batch statement: that statement joins the history's weeks and, run
// unprepared, is planned on every call, busy or idle (2 ms a callback poll, 10 ms an outbox sweep,
// at 15 weeks: most of PostgreSQL's time with the stack at rest). This one keeps a cached plan
// that probes the index (collectByKey), whatever the weeks.
func (s *Store) anyDue(ctx context.Context, query string, args ...any) (bool, error) {
	found, err := collectByKey(ctx, s, pgx.RowTo[bool], `SELECT EXISTS (`+query+`)`, args...)
	return len(found) == 1 && found[0], err
}

// page trims out, read with one row more than limit, to limit rows, and returns with them the
// cursor of the next page: cursor of the last row kept, or C's zero value when out held no more.
func page[T any, C any](out []T, limit int, cursor func(last T) C) ([]T, C) {
	var next C
	if len(out) > limit {
		out = out[:limit]
		next = cursor(out[limit-1])
	}
	return out, next
}
