package apply

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Result says what one batch did.
type Result struct {
	Applied   int // matched to a message and recorded
	Waiting   int // no message yet; tried again later
	Unmatched int // gave up waiting: kept for reconciliation
	Changed   []store.Ref
}

// applyBatch applies one batch of due callbacks in one transaction. The rules:
//   - callbacks apply in the providers' order of events, whatever order they arrived in;
//   - each moves its message's status forward only (message.Tracking.Observe: a late "sent"
//     never undoes "delivered"), and joins the message's timeline either way;
//   - the transitions it makes count in the hourly analytics rollup, and its error, if any, in
//     the provider-error rollups, both by the hour the provider says it happened;
//   - a hard bounce or a complaint suppresses the recipient (as the provider names it, else as
//     the message had it) on the message's channel;
//   - a callback whose message is not found waits with backoff, then is kept as unmatched.
func (t *Applier) applyBatch(ctx context.Context) (Result, error) {
	var res Result
	err := t.store.ApplyCallbackBatch(ctx, t.cfg.Batch, func(tx *store.CallbackTx, due []store.DueCallback) error {
		res = Result{}
		slices.SortStableFunc(due, func(a, b store.DueCallback) int { return a.OccurredAt.Compare(b.OccurredAt) })
		changed := map[*store.TrackedMessage]bool{}
		for _, c := range due {
			m := c.Message
			if m == nil {
				t.wait(ctx, tx, c, &res)
				continue
			}
			next, counts := m.Observe(c.Status, c.OccurredAt)
			if next != m.Tracking {
				m.Tracking = next
				if !changed[m] {
					changed[m] = true
					res.Changed = append(res.Changed, m.Ref)
				}
			}
			tx.Record(c, strings.TrimSpace(c.ProviderCode+" "+c.Reason))
			hour := c.OccurredAt.UTC().Truncate(time.Hour)
			if !counts.Zero() {
				tx.AddCounts(c, hour, counts)
			}
			if c.ErrorCode != "" {
				tx.CountError(c, hour)
			}
			if c.Suppress != "" {
				rcpt := c.Recipient
				if rcpt == "" {
					rcpt = m.Recipient
				}
				tx.Suppress(m, message.RecipientKey(m.Channel, rcpt), c.Suppress, strings.TrimSpace(c.ProviderCode+" "+c.Reason))
			}
			res.Applied++
		}
		for m := range changed {
			tx.SetTracking(m)
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// wait leaves an unmatched callback for a later try, or gives up after MaxTries.
func (t *Applier) wait(ctx context.Context, tx *store.CallbackTx, c store.DueCallback, res *Result) {
	giveUp := c.Tries+1 >= t.cfg.MaxTries
	tx.Wait(c, t.cfg.Now().Add(t.cfg.Backoff(c.Tries+1)), giveUp)
	if !giveUp {
		res.Waiting++
		return
	}
	res.Unmatched++
	t.log.WarnContext(ctx, "callback matches no message; kept as unmatched", "provider_id", c.ProviderConfigID,
		"provider_message_id", c.ProviderMessageID, "status", c.Status, "tries", c.Tries+1)
}
