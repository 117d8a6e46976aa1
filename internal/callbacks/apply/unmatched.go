package apply

import (
	"context"

	"github.com/logicspike/comms/internal/domain"
)

// UnmatchedStore is what Unmatched reads and changes; *store.Store implements it.
type UnmatchedStore interface {
	ListUnmatchedCallbacks(ctx context.Context, limit int) ([]domain.UnmatchedCallback, error)
	RetryUnmatchedCallbacks(ctx context.Context) (int, error)
}

// Unmatched is the ops side of callbacks that gave up waiting for their message: list them for
// reconciliation, and queue them all again once it is done.
type Unmatched struct{ store UnmatchedStore }

// NewUnmatched returns the service.
func NewUnmatched(s UnmatchedStore) *Unmatched { return &Unmatched{store: s} }

// List returns up to limit unmatched callbacks, newest first.
func (u *Unmatched) List(ctx context.Context, limit int) ([]domain.UnmatchedCallback, error) {
	return u.store.ListUnmatchedCallbacks(ctx, limit)
}

// Retry queues every unmatched callback for matching again (audited) and returns how many.
func (u *Unmatched) Retry(ctx context.Context) (int, error) {
	return u.store.RetryUnmatchedCallbacks(ctx)
}
