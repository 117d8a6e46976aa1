package intake

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// overflow counts intents handed to the sweeper because a queue was full and logs them at most
// once a second: the count since the last line and the latest one's ids.
type overflow struct {
	mu     sync.Mutex
	n      int
	logged time.Time
}

func (o *overflow) add(ctx context.Context, log *slog.Logger, msg string, ids ...any) {
	o.mu.Lock()
	o.n++
	if time.Since(o.logged) < time.Second {
		o.mu.Unlock()
		return
	}
	n := o.n
	o.n, o.logged = 0, time.Now()
	o.mu.Unlock()
	log.WarnContext(ctx, msg, append([]any{"count", n}, ids...)...)
}
