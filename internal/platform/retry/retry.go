// Package retry is the one way comms waits out an infrastructure failure (PostgreSQL, Kafka or
// Redis unreachable, a batch refused): back off from 50 ms, doubling to 5 s, for as long as the
// context lasts. Losing work is never the answer to an outage; waiting for it to pass is.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is a fresh infrastructure backoff: 50 ms doubling (with jitter) to 5 s, never giving up.
func Backoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 50*time.Millisecond, 5*time.Second, 0
	return b
}

// UntilDone runs op until it returns nil, returns an error wrapped by Permanent, or ctx ends;
// it returns op's last error (or ctx's).
func UntilDone(ctx context.Context, op func() error) error {
	return backoff.Retry(op, backoff.WithContext(Backoff(), ctx))
}

// Permanent marks err as not worth retrying: UntilDone returns it at once.
func Permanent(err error) error { return backoff.Permanent(err) }
