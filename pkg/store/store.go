// Package store is the only place that speaks SQL. Every method that touches tenant data takes the
// tenant id as a required argument, so no query can forget to scope by it.
package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row does not exist for the given tenant.
var ErrNotFound = errors.New("not found")

// Store wraps the pool.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the pool for health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
