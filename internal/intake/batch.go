package intake

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// MaxBatchContentBytes bounds what one batch's messages hold in all (subjects, texts and HTML, as
// rendered): a small template and a thousand recipients could otherwise make one request store
// and hold hundreds of megabytes. Rendering stops once it is passed.
const MaxBatchContentBytes = 16 << 20

// ErrBatchTooLarge refuses a batch whose messages hold more than MaxBatchContentBytes in all.
var ErrBatchTooLarge = fmt.Errorf("the batch's messages hold more than %d bytes in all", MaxBatchContentBytes)

// ItemResult is the outcome of one batch item: accepted (or replayed), or refused with Err
// (*message.ValidationError naming the item's own fields, ErrSuppressed, ErrIdempotencyMismatch).
type ItemResult struct {
	Accepted
	Err error
}

// SubmitBatch validates every item of b, records the valid ones in one statement (so all of them
// or none are durable when it returns), and queues their intents. An invalid item does not stop
// the others. With idemKey the whole call is replay-safe: the key is claimed for the hash of the
// whole batch before anything is recorded, and item i is recorded under its own key (see
// batchItemKey), so the same key and body give the same answer and each message is created
// once, and a different body under the same key is refused whole (ErrIdempotencyMismatch) with
// nothing recorded. An error means nothing was recorded.
//
// Each item counts against its channel's quota; if the valid items do not all fit, the batch is
// refused whole (*quota.ExceededError) and nothing is recorded.
func (s *Service) SubmitBatch(ctx context.Context, t domain.Tenant, idemKey string, b message.BatchRequest) ([]ItemResult, error) {
	tenantID := t.ID
	out := make([]ItemResult, len(b.Messages))
	var hash []byte
	if idemKey != "" {
		raw, _ := json.Marshal(b) // struct fields in order, map keys sorted: canonical
		h := sha256.Sum256(raw)
		hash = h[:]
	}
	var (
		msgs  []store.NewMessage
		index []int // msgs[j] is item index[j]
	)
	content := 0 // bytes of every item's subject, text and html, as rendered
	reqs := make([]message.Request, len(b.Messages))
	for i := range b.Messages {
		reqs[i] = b.Expand(i)
	}
	profiles, err := s.profiles(ctx, tenantID, reqs)
	if err != nil {
		return nil, err
	}
	for i := range b.Messages {
		if faults := b.ItemFaults(i); len(faults) > 0 {
			out[i].Err = &message.ValidationError{Fields: faults}
			continue
		}
		req, use, err := s.prepareFor(ctx, tenantID, reqs[i], profiles)
		if err != nil {
			out[i].Err = err
			continue
		}
		if content += len(req.Subject) + len(req.Text) + len(req.HTML); content > MaxBatchContentBytes {
			return nil, ErrBatchTooLarge
		}
		pref, err := s.admit(ctx, tenantID, req)
		var verr *message.ValidationError
		if errors.As(err, &verr) {
			out[i].Err = err
			continue
		} else if err != nil {
			return nil, err
		}
		nm := store.NewMessage{ID: ids.NewSortable(ids.Message), TenantID: tenantID, Request: req, RequestHash: hash, Template: use, SendAt: dueAt(req.SendAt),
			TraceParent: tracing.TraceParent(ctx), Preference: pref}
		if idemKey != "" {
			nm.IdempotencyKey = batchItemKey(idemKey, i)
		}
		if req.Channel == message.SMS {
			sz := message.MeasureSMS(req.Text)
			nm.SMS = &sz
		}
		msgs, index = append(msgs, nm), append(index, i)
	}
	if len(msgs) == 0 {
		return out, nil
	}
	units := map[message.Channel]int64{}
	for _, m := range msgs {
		units[m.Request.Channel] += quotaUnits(m)
	}
	held := map[message.Channel]*quota.Reservation{}
	for ch, n := range units {
		r, err := s.reserve(ctx, t, ch, n)
		if err != nil {
			for c, r := range held {
				r.Release(ctx, units[c])
			}
			if rep := s.repeatedBatch(ctx, tenantID, idemKey, hash, msgs); rep != nil {
				return s.answerBatch(ctx, out, msgs, index, rep), nil // a repeat gets its first answer, quota or not
			}
			return nil, err
		}
		held[ch] = r
	}
	if idemKey != "" {
		ours, err := s.store.ClaimRequestKey(ctx, tenantID, batchKey(idemKey), hash)
		if err == nil && !ours {
			err = ErrIdempotencyMismatch
		}
		if err != nil {
			for c, r := range held {
				r.Release(ctx, units[c])
			}
			return nil, err
		}
	}
	res, err := s.store.RecordMessages(ctx, func(tx *store.IntakeTx) error {
		for _, m := range msgs {
			record(tx, m)
		}
		return nil
	})
	if err != nil {
		for c, r := range held {
			r.Release(ctx, units[c])
		}
		return nil, fmt.Errorf("record batch of %d: %w", len(msgs), err)
	}
	for j, r := range res {
		if r.Suppressed || r.OptedOut || r.Mismatch || r.Duplicate {
			held[msgs[j].Request.Channel].Release(ctx, quotaUnits(msgs[j])) // nothing new was recorded
		}
	}
	return s.answerBatch(ctx, out, msgs, index, res), nil
}

// batchKey and batchItemKey are what a batch's Idempotency-Key is recorded as: the request's
// claim, and each item's. Both hold a space, which a client's key may not (printable ASCII
// without spaces), so neither ever collides with a single send's key, nor with another batch's.
func batchKey(idemKey string) string { return idemKey + " batch" }

func batchItemKey(idemKey string, i int) string { return idemKey + " batch#" + strconv.Itoa(i) }

// answerBatch fills out from what recording msgs (items index) did, and queues the new ones.
func (s *Service) answerBatch(ctx context.Context, out []ItemResult, msgs []store.NewMessage, index []int, res []store.Inserted) []ItemResult {
	for j, r := range res {
		i, m := index[j], msgs[j]
		switch {
		case r.Suppressed:
			out[i].Err = ErrSuppressed
		case r.OptedOut:
			out[i].Err = ErrOptedOut
		case r.Mismatch:
			out[i].Err = ErrIdempotencyMismatch
		case r.Duplicate:
			out[i].Accepted = replayed(r.ID, r.CreatedAt, m.Request.SendAt)
		case m.SendAt != nil:
			out[i].Accepted = Accepted{ID: r.ID, Status: message.Scheduled, CreatedAt: r.CreatedAt, ScheduledAt: m.SendAt}
		default:
			out[i].Accepted = Accepted{ID: r.ID, Status: message.Queued, CreatedAt: r.CreatedAt}
			s.enqueue(ctx, m.TenantID, r.ID, m.Request)
		}
	}
	return out
}

// repeatedBatch is, for a batch the quota turned away, what recording it would have answered
// if every item repeats an earlier one (the same Idempotency-Key); nil otherwise.
func (s *Service) repeatedBatch(ctx context.Context, tenantID, idemKey string, hash []byte, msgs []store.NewMessage) []store.Inserted {
	if idemKey == "" {
		return nil
	}
	keys := make([]string, len(msgs))
	for j, m := range msgs {
		keys[j] = m.IdempotencyKey
	}
	rep, err := s.store.ListRepeats(ctx, tenantID, keys, hash)
	if err != nil || len(rep) != len(keys) {
		return nil
	}
	out := make([]store.Inserted, len(keys))
	for j, k := range keys {
		out[j] = rep[k]
	}
	return out
}
