package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// DueCallback is a stored callback due for a match attempt, locked by its transaction.
type DueCallback struct {
	provider.Event
	ID    int64
	Week  time.Time // with ID, the callback's key: the Monday of the week it was received
	Tries int       // match attempts so far
	// Message is the message the callback names, locked; nil when none is found (yet).
	Message *TrackedMessage
}

// TrackedMessage is a message's delivery tracking as a callback transaction sees it.
type TrackedMessage struct {
	Ref
	Channel   message.Channel
	Recipient string
	Template  string // '' for ad-hoc bodies
	Category  string
	CreatedAt time.Time
	message.Tracking
}

// CallbackTx is one transaction over a batch of due callbacks. Its writes are gathered and sent
// in one round trip when the function given to ApplyCallbackBatch returns; they commit together.
type CallbackTx struct{ w *trackWriter }

// ApplyCallbackBatch locks up to limit due callbacks (skipping those another transaction holds)
// and the messages they name (in id order, so concurrent batches cannot deadlock), and calls fn
// with them; fn decides, through tx, what each one writes. An error from fn rolls everything back.
func (s *Store) ApplyCallbackBatch(ctx context.Context, limit int, fn func(tx *CallbackTx, due []DueCallback) error) error {
	due, err := s.anyDue(ctx, `SELECT 1 FROM communication.callbacks WHERE outcome = 'pending' AND next_try_at <= now()`)
	if err != nil {
		return fmt.Errorf("look for due callbacks: %w", err)
	}
	if !due {
		return nil
	}
	err = s.keyedTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT c.id, c.provider_config_id, c.provider_type, c.event_key, c.provider_message_id, c.status,
			       c.error_code, c.provider_code, c.reason, c.recipient, c.suppress, c.occurred_at, c.payload::text,
			       c.received_week, c.tries, coalesce(r.tenant_id, ''), coalesce(r.message_id, '')
			FROM communication.callbacks c
			-- The newest week first (none of the weeks made ahead): a callback mostly follows its
			-- send within minutes.
			LEFT JOIN LATERAL (
				SELECT r.tenant_id, r.message_id FROM communication.provider_message_refs r
				WHERE r.provider_config_id = c.provider_config_id AND r.provider_message_id = c.provider_message_id
				  AND r.created_at <= now()
				ORDER BY r.created_at DESC LIMIT 1
			) r ON true
			WHERE c.outcome = 'pending' AND c.next_try_at <= now()
			ORDER BY c.next_try_at, c.id LIMIT $1
			FOR UPDATE OF c SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		var refs []Ref
		due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueCallback, error) {
			var c DueCallback
			var payload string
			var ref Ref
			err := r.Scan(&c.ID, &c.ProviderConfigID, &c.ProviderType, &c.EventKey, &c.ProviderMessageID, &c.Status,
				&c.ErrorCode, &c.ProviderCode, &c.Reason, &c.Recipient, &c.Suppress, &c.OccurredAt, &payload,
				&c.Week, &c.Tries, &ref.TenantID, &ref.ID)
			c.Payload = []byte(payload)
			refs = append(refs, ref)
			return c, err
		})
		if err != nil || len(due) == 0 {
			return err
		}
		msgs, err := lockTracked(ctx, tx, refs)
		if err != nil {
			return err
		}
		for i := range due {
			due[i].Message = msgs[refs[i].ID]
		}
		batch := &CallbackTx{w: newTrackWriter()}
		if err := fn(batch, due); err != nil {
			return err
		}
		return batch.w.flush(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("apply callbacks: %w", err)
	}
	return nil
}

// lockTracked locks the messages refs name, in id order.
func lockTracked(ctx context.Context, tx pgx.Tx, refs []Ref) (map[string]*TrackedMessage, error) {
	var tenants, msgIDs []string
	for _, r := range refs {
		if r.ID != "" {
			tenants, msgIDs = append(tenants, r.TenantID), append(msgIDs, r.ID)
		}
	}
	out := map[string]*TrackedMessage{}
	if len(msgIDs) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT m.id, m.tenant_id, m.channel, m.recipient, coalesce(m.template_key, ''), m.category, m.created_at, m.status, m.delivered_at, m.opened_at, m.clicked_at
		FROM communication.message_logs m
		JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS r(tenant_id, id) ON m.tenant_id = r.tenant_id AND m.id = r.id
		  AND `+madeAt("m.created_at", "r.id")+`
		ORDER BY m.id FOR UPDATE OF m`, tenants, msgIDs)
	if err != nil {
		return nil, err
	}
	var m TrackedMessage
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &m.TenantID, &m.Channel, &m.Recipient, &m.Template, &m.Category, &m.CreatedAt, &m.Status, &m.DeliveredAt, &m.OpenedAt, &m.ClickedAt}, func() error {
		c := m
		out[c.ID] = &c
		return nil
	})
	return out, err
}

// Wait leaves c pending until next, or, with giveUp, marks it unmatched (kept for
// reconciliation).
func (tx *CallbackTx) Wait(c DueCallback, next time.Time, giveUp bool) {
	w := tx.w
	w.waitID, w.waitAt, w.waitNext, w.waitGiveUp = append(w.waitID, c.ID), append(w.waitAt, c.Week), append(w.waitNext, next), append(w.waitGiveUp, giveUp)
}

// Record adds c to its message's timeline, with reason as its text, and marks c applied.
func (tx *CallbackTx) Record(c DueCallback, reason string) {
	w, m := tx.w, c.Message
	w.evMsg, w.evTenant, w.evStatus = append(w.evMsg, m.ID), append(w.evTenant, m.TenantID), append(w.evStatus, string(c.Status))
	w.evCfg, w.evType, w.evCode = append(w.evCfg, c.ProviderConfigID), append(w.evType, c.ProviderType), append(w.evCode, c.ErrorCode)
	// A message whose recipient was erased (POST /v1/erasures) keeps no provider payload: a late
	// callback's body holds the address.
	erased := m.Recipient == ""
	var payload *string
	if !erased {
		payload = ptr(string(c.Payload))
	}
	w.evReason, w.evPayload, w.evAt = append(w.evReason, reason), append(w.evPayload, payload), append(w.evAt, c.OccurredAt)
	w.evMsgAt = append(w.evMsgAt, m.CreatedAt)
	w.doneID, w.doneAt, w.doneMsg, w.doneErased = append(w.doneID, c.ID), append(w.doneAt, c.Week), append(w.doneMsg, m.ID), append(w.doneErased, erased)
}

// SetTracking writes m's status and first delivered, opened and clicked times.
func (tx *CallbackTx) SetTracking(m *TrackedMessage) {
	w := tx.w
	w.updID, w.updTenant, w.updStatus = append(w.updID, m.ID), append(w.updTenant, m.TenantID), append(w.updStatus, string(m.Status))
	w.updDelivered, w.updOpened, w.updClicked = append(w.updDelivered, m.DeliveredAt), append(w.updOpened, m.OpenedAt), append(w.updClicked, m.ClickedAt)
}

// AddCounts adds the transitions c made to its message (counts) to the hourly analytics rollup
// of hour, and to the usage of hour's day.
func (tx *CallbackTx) AddCounts(c DueCallback, hour time.Time, counts message.Counts) {
	m := c.Message
	k := rollupKey{m.TenantID, string(m.Channel), hour}
	if tx.w.rollups[k] == nil {
		tx.w.rollups[k] = &message.Counts{}
	}
	tx.w.rollups[k].Add(counts)
	u := usageKey{m.TenantID, string(m.Channel), c.ProviderConfigID, m.Template, m.Category, hour.Truncate(24 * time.Hour)}
	if tx.w.usage[u] == nil {
		tx.w.usage[u] = &message.Counts{}
	}
	tx.w.usage[u].Add(counts)
}

// CountError adds c's error to the provider-error rollups of hour (and its day), keeping the
// latest occurrence's words as the example.
func (tx *CallbackTx) CountError(c DueCallback, hour time.Time) {
	m := c.Message
	k := errorKey{m.TenantID, string(m.Channel), c.ProviderType, c.ProviderConfigID, c.ErrorCode, hour}
	d := tx.w.errors[k]
	if d == nil {
		d = &errorDelta{}
		tx.w.errors[k] = d
	}
	d.count++
	if !c.OccurredAt.Before(d.at) {
		d.message, d.pcode, d.at = c.Reason, c.ProviderCode, c.OccurredAt
	}
}

// Suppress adds recipientKey to m's tenant's suppression list for m's channel (a no-op when
// already there), naming m as the cause.
func (tx *CallbackTx) Suppress(m *TrackedMessage, recipientKey, reason, detail string) {
	if recipientKey == "" { // the message's recipient was erased
		return
	}
	w := tx.w
	w.supTenant, w.supChannel = append(w.supTenant, m.TenantID), append(w.supChannel, string(m.Channel))
	w.supRcpt, w.supReason, w.supDetail, w.supMsg = append(w.supRcpt, recipientKey), append(w.supReason, reason), append(w.supDetail, detail), append(w.supMsg, m.ID)
}

type rollupKey struct {
	tenant, channel string
	bucket          time.Time
}

type usageKey struct {
	tenant, channel, cfg, template, category string
	day                                      time.Time
}

type errorKey struct {
	tenant, channel, typ, cfg, code string
	bucket                          time.Time
}

type errorDelta struct {
	count          int64
	message, pcode string
	at             time.Time
}

// trackWriter gathers one batch's writes and sends them in one round trip.
type trackWriter struct {
	evMsg, evTenant, evStatus, evCfg, evType, evCode, evReason   []string
	evPayload                                                    []*string
	evAt, evMsgAt                                                []time.Time
	updID, updTenant, updStatus                                  []string
	updDelivered, updOpened, updClicked                          []*time.Time
	rollups                                                      map[rollupKey]*message.Counts
	usage                                                        map[usageKey]*message.Counts
	errors                                                       map[errorKey]*errorDelta
	supTenant, supChannel, supRcpt, supReason, supDetail, supMsg []string
	doneID                                                       []int64
	doneAt, waitAt                                               []time.Time
	doneMsg                                                      []string
	doneErased                                                   []bool
	waitID                                                       []int64
	waitNext                                                     []time.Time
	waitGiveUp                                                   []bool
}

func newTrackWriter() *trackWriter {
	return &trackWriter{rollups: map[rollupKey]*message.Counts{}, usage: map[usageKey]*message.Counts{}, errors: map[errorKey]*errorDelta{}}
}
