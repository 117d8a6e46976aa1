package worker

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/logicspike/comms/internal/platform/retry"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// The worker's database round trips and dead-letter copies: claims, outcomes, retry marks and
// push messages' devices are batched across messages (New declares the batchers).

// retryMarkLinger is how long a retry put on its tier waits to be marked published with others.
// The mark only keeps the sweeper from publishing the retry again, which it does after its grace
// (10 s by default); a lost mark costs a duplicate intent, which the worker defers or skips.
const retryMarkLinger = 250 * time.Millisecond

func (w *Worker) markBatch(ctx context.Context, refs []store.Ref) error {
	if err := w.store.MarkPublished(ctx, refs); err != nil {
		w.log.WarnContext(ctx, "could not mark retries published; the sweeper may publish them again", "count", len(refs), "err", err)
	}
	return nil
}

// publishDeadLetter copies the intent to comms.send.dlq for consumers of the topic. The
// dead_letters row, written with the outcome, is what ops list and replay.
func (w *Worker) publishDeadLetter(ctx context.Context, log *slog.Logger, m queue.Message, out store.Outcome) {
	dl := queue.Message{Key: m.Key, Value: m.Value, Headers: []queue.Header{
		{Key: "error_code", Value: []byte(out.ErrorCode)},
		{Key: "error", Value: []byte(out.ErrorMessage)},
		{Key: "attempts", Value: []byte(strconv.Itoa(out.Attempt))},
		{Key: "provider_id", Value: []byte(out.ProviderConfigID)},
		{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}}
	if err := w.dlq.PublishRaw(ctx, dl); err != nil {
		log.WarnContext(ctx, "could not copy the dead letter to the topic; it is indexed for replay", "err", err)
	}
}

func (w *Worker) deadLetter(ctx context.Context, m queue.Message, cause error) bool {
	w.log.ErrorContext(ctx, "unprocessable intent sent to the dead-letter topic", "err", cause,
		"partition", m.Partition, "offset", m.Offset)
	dl := queue.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers,
		queue.Header{Key: "error", Value: []byte(cause.Error())},
		queue.Header{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	)}
	return retry.UntilDone(ctx, func() error { return w.dlq.PublishRaw(ctx, dl) }) == nil
}

func (w *Worker) claimBatch(ctx context.Context, refs []store.Ref) ([]*store.Claimed, error) {
	claimed, err := w.store.ClaimMessages(ctx, refs, w.cfg.Lease)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Claimed, len(claimed))
	for i := range claimed {
		byID[claimed[i].ID] = &claimed[i]
	}
	out := make([]*store.Claimed, len(refs))
	for i, r := range refs {
		// The same intent twice in one batch (a redelivery) must be claimed once.
		out[i] = byID[r.ID]
		delete(byID, r.ID)
	}
	return out, nil
}

// finishBatch records outcomes as the rules say (write); each caller learns whether its own was
// recorded (1) or belonged to a superseded attempt (0).
func (w *Worker) finishBatch(ctx context.Context, outs []outcome) ([]int, error) {
	recorded, err := w.store.FinishAttempts(ctx, func(tx *store.OutcomeTx) error {
		for _, o := range outs {
			write(tx, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok := make(map[string]bool, len(recorded))
	for _, id := range recorded {
		ok[id] = true
	}
	res := make([]int, len(outs))
	for i, o := range outs {
		if ok[o.ID] {
			res[i] = 1
		}
	}
	return res, nil
}

// unclaimed handles an intent whose claim found nothing to claim, and reports whether its offset
// may be committed. The message is usually handled already, or in another attempt; but a retry
// that arrived before its time (released early, or clocks that disagree) is deferred to that
// time, never dropped: it may be the message's only intent.
func (w *Worker) unclaimed(ctx context.Context, log *slog.Logger, ref store.Ref, env queue.Envelope) bool {
	var due time.Time
	var waits bool
	if err := retry.UntilDone(ctx, func() error {
		var err error
		due, waits, err = w.store.RetryDue(ctx, ref, env.Attempt-1)
		return err
	}); err != nil {
		return false
	}
	if !waits {
		log.DebugContext(ctx, "intent skipped: message is not queued (already handled, in another attempt, or unknown)")
		return true
	}
	env.Parked, env.EnqueuedAt, env.NotBefore = false, time.Now().UTC(), due.UTC()
	log.InfoContext(ctx, "intent arrived before its retry's time: deferred to it", "due", env.NotBefore)
	return retry.UntilDone(ctx, func() error { return w.deferTo(ctx, queue.RetryTopic(time.Until(due)), env) }) == nil
}
