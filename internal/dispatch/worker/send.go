package worker

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/provider"
)

// send sends the claimed message through s (with its unsubscribe headers, for an email).
func (w *Worker) send(ctx context.Context, s Sender, c *store.Claimed) (res provider.Result, err error) {
	var headers map[string]string
	if w.cfg.Unsubscribe != nil {
		// an email that must carry its unsubscribe link is not sent without it: a retry will
		if headers, err = w.cfg.Unsubscribe.Headers(ctx, c.Message); err != nil {
			return provider.Result{}, fmt.Errorf("make the unsubscribe link: %w", err)
		}
	}
	return w.call(ctx, s, provider.Message{
		ID: c.ID, TenantID: c.TenantID, Channel: c.Channel, To: c.To, From: c.From,
		Subject: c.Subject, Text: c.Text, HTML: c.HTML, Metadata: c.Metadata, Headers: headers,
	})
}

// call sends m through s within the attempt timeout; a panicking adapter is a failed send.
func (w *Worker) call(ctx context.Context, s Sender, m provider.Message) (res provider.Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("provider adapter panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return s.Send(ctx, m)
}
