package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/pkg/message"
)

// Outcome is the result of one attempt, as its message records it.
type Outcome struct {
	Ref
	Attempt           int            // from Claimed.Attempt
	Status            message.Status // sent, failed, or queued for a retry at NextAttemptAt
	ProviderConfigID  string
	ProviderType      string
	ProviderMessageID string
	ErrorCode         string
	ErrorMessage      string
	// Cost and Currency are what a sent message cost, and CostSource where the figure came from
	// ("provider", "unit_price", or "" for unknown).
	Cost, Currency, CostSource string
	NextAttemptAt              time.Time
}

// OutcomeTx gathers what a batch of attempt outcomes writes; the dispatch rules decide, through
// its methods, what each outcome writes beyond its own row. FinishAttempts sends it all as one
// statement in which every write is gated on its message still being in the attempt that
// produced the outcome: the outcome of a superseded attempt writes nothing.
type OutcomeTx struct {
	outs []Outcome
	w    []outcomeWrites
	pos  map[string]int // message id → its outcome
	err  error
}

// outcomeWrites are the writes of one outcome beyond its message row.
type outcomeWrites struct {
	event             string
	index, priceLater bool
	deadLetter        []byte // the intent to replay; nil: not dead-lettered
	suppress          string // the suppression's reason; "": none
	recipientKey      string
}

// Record records o on its message (status, provider, error, cost, next attempt; a sent or failed
// message leaves the outbox, a retry waits in it unpublished, so that the sweeper publishes it
// if nobody puts it on a retry topic) and counts the attempt in usage, the analytics rollup and
// the provider-error rollups, all derived from the row it writes. Every other method names a
// message recorded here first.
func (tx *OutcomeTx) Record(o Outcome) {
	if o.Status != message.Sent && o.Status != message.Failed && (o.Status != message.Queued || o.NextAttemptAt.IsZero()) {
		tx.fail(fmt.Errorf("outcome for %s: status %q is not sent, failed, or queued with a next attempt", o.ID, o.Status))
		return
	}
	tx.pos[o.ID] = len(tx.outs)
	tx.outs = append(tx.outs, o)
	tx.w = append(tx.w, outcomeWrites{})
}

// Emit records the message's timeline event with status event. Every recorded outcome has one.
func (tx *OutcomeTx) Emit(ref Ref, event string) {
	if w := tx.writes(ref, "Emit"); w != nil {
		w.event = event
	}
}

// IndexForCallbacks indexes a sent message by its provider message id, for the provider's
// delivery callbacks to find it.
func (tx *OutcomeTx) IndexForCallbacks(ref Ref) {
	if w := tx.writes(ref, "IndexForCallbacks"); w != nil {
		w.index = true
	}
}

// PriceLater queues a sent message without a price for the pricer, which asks the provider.
func (tx *OutcomeTx) PriceLater(ref Ref) {
	if w := tx.writes(ref, "PriceLater"); w != nil {
		w.priceLater = true
	}
}

// DeadLetter indexes a failed message in dead_letters, with envelope as the intent to replay.
func (tx *OutcomeTx) DeadLetter(ref Ref, envelope []byte) {
	if len(envelope) == 0 {
		tx.fail(fmt.Errorf("outcome for %s: a dead letter needs its envelope", ref.ID))
		return
	}
	if w := tx.writes(ref, "DeadLetter"); w != nil {
		w.deadLetter = envelope
	}
}

// Suppress adds the message's recipient (recipientKey, as message.RecipientKey makes it) to its
// tenant's suppression list on the message's channel, with reason ("bounce" or "complaint") and
// the outcome's error as its detail.
func (tx *OutcomeTx) Suppress(ref Ref, recipientKey, reason string) {
	if w := tx.writes(ref, "Suppress"); w != nil {
		w.suppress, w.recipientKey = reason, recipientKey
	}
}

func (tx *OutcomeTx) writes(ref Ref, what string) *outcomeWrites {
	i, ok := tx.pos[ref.ID]
	if !ok {
		tx.fail(fmt.Errorf("%s for %s, which has no recorded outcome", what, ref.ID))
		return nil
	}
	return &tx.w[i]
}

func (tx *OutcomeTx) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

// FinishAttempts calls fn to gather a batch of outcomes and their writes, and sends them in one
// round trip. It returns the ids of the messages recorded; an outcome of a superseded attempt is
// not among them.
func (s *Store) FinishAttempts(ctx context.Context, fn func(tx *OutcomeTx) error) ([]string, error) {
	tx := &OutcomeTx{pos: map[string]int{}}
	if err := fn(tx); err != nil {
		return nil, err
	}
	if tx.err != nil {
		return nil, tx.err
	}
	n := len(tx.outs)
	if n == 0 {
		return nil, nil
	}
	var (
		tenant, id, status, cfg, typ, pmid, code, msg = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		attempt                                       = make([]int32, n)
		cost, currency, source, ev, envs              = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		next                                          = make([]*time.Time, n)
		dl, idx, price                                = make([]bool, n), make([]bool, n), make([]bool, n)
		supReason, supRcpt                            = make([]string, n), make([]string, n)
	)
	for i, o := range tx.outs {
		w := tx.w[i]
		if w.event == "" {
			return nil, fmt.Errorf("outcome for %s: no event emitted", o.ID)
		}
		tenant[i], id[i], status[i], cfg[i], typ[i] = o.TenantID, o.ID, string(o.Status), o.ProviderConfigID, o.ProviderType
		// The provider's words and ids are stored as text PostgreSQL accepts, whatever it answered.
		pmid[i], code[i], msg[i], attempt[i] = pgText(o.ProviderMessageID), o.ErrorCode, pgText(o.ErrorMessage), int32(o.Attempt)
		cost[i], currency[i], source[i], ev[i] = pgText(o.Cost), pgText(o.Currency), o.CostSource, w.event
		if !o.NextAttemptAt.IsZero() {
			next[i] = &o.NextAttemptAt
		}
		dl[i], envs[i], idx[i], price[i] = w.deadLetter != nil, string(w.deadLetter), w.index, w.priceLater
		supReason[i], supRcpt[i] = w.suppress, w.recipientKey
	}
	times := madeTimes(id)
	lo, hi := timeBounds(times)
	recorded, err := inWeek("message_logs", times, func(tbl string) ([]string, error) {
		return collectByKey(ctx, s, pgx.RowTo[string], outcomeIn(tbl),
			tenant, id, status, cfg, typ, pmid, code, msg, attempt, cost, currency, next, dl, envs, idx, price, source, ev, supReason, supRcpt, times, lo, hi)
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d attempts: %w", n, err)
	}
	return recorded, nil
}

// outcomeIn is the outcome's statement on tbl, message_logs or the week's partition (inWeek).
func outcomeIn(tbl string) string {
	return `
		WITH o AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[], $12::timestamptz[], $13::bool[], $14::text[], $15::bool[], $16::bool[], $17::text[], $18::text[], $19::text[], $20::text[], $21::timestamptz[])
			AS o(tenant_id, id, status, cfg, typ, pmid, code, msg, attempt, cost, currency, next, dl, env, idx, price, source, event, sup_reason, sup_rcpt, at)
		), t AS MATERIALIZED (
			-- The outcomes whose attempt is current, each looked up by primary key behind OFFSET 0
			-- (see ClaimMessages), materialised so that the update below joins with at most a batch of rows, and no
			-- plan of it scans message_logs. The update checks again, on the row it locks.
			SELECT o.*, l.created_at FROM o CROSS JOIN LATERAL (
				SELECT l.status, l.attempts, l.created_at FROM ` + tbl + ` l
				WHERE l.tenant_id = o.tenant_id AND l.id = o.id AND l.created_at = o.at AND l.created_at BETWEEN $22 AND $23 OFFSET 0
			) l
			WHERE l.status = 'sending' AND l.attempts = o.attempt
		), u AS (
			UPDATE ` + tbl + ` m
			SET status = o.status, provider_config_id = NULLIF(o.cfg, ''), provider_type = o.typ,
			    provider_message_id = o.pmid, error_code = o.code, error_message = o.msg,
			    cost = o.cost, cost_currency = o.currency, cost_source = o.source,
			    next_attempt_at = o.next,
			    sent_at = CASE WHEN o.status = 'sent' THEN now() END, lease_expires_at = NULL, updated_at = now()
			FROM t o
			WHERE m.tenant_id = o.tenant_id AND m.id = o.id AND m.created_at = o.created_at AND m.created_at BETWEEN $22 AND $23 AND m.status = 'sending' AND m.attempts = o.attempt
			RETURNING m.id, m.tenant_id, m.created_at, m.channel, o.status, o.attempt, o.cfg, o.typ, o.pmid, o.code, o.msg, o.dl, o.env, o.event, o.idx, o.price, o.sup_reason, o.sup_rcpt,
			          coalesce(m.template_key, '') AS tmpl, m.category, m.sms_segments, m.cost, m.cost_currency, o.source
		), prices AS (
			INSERT INTO communication.price_checks (message_id, tenant_id, provider_config_id, provider_message_id, due_at)
			SELECT id, tenant_id, cfg, pmid, now() FROM u WHERE price
			ON CONFLICT DO NOTHING
		), usage AS (
			-- every outcome is an attempt; see migration 0017 and FoldAnalytics
			INSERT INTO communication.usage_deltas (tenant_id, day, channel, provider_config_id, template_key, category, currency, attempts, sent, failed, segments, cost)
			SELECT tenant_id, (now() AT TIME ZONE 'UTC')::date, channel, cfg, tmpl, category, cost_currency, count(*),
			       count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
			       coalesce(sum(coalesce(sms_segments, 1)) FILTER (WHERE status = 'sent' AND channel = 'sms'), 0),
			       coalesce(sum(CASE WHEN cost ~ '^-?[0-9]+(\.[0-9]+)?$' THEN abs(cost::numeric) END) FILTER (WHERE status = 'sent'), 0)
			FROM u GROUP BY 1, 2, 3, 4, 5, 6, 7
		), refs AS (
			INSERT INTO communication.provider_message_refs (provider_config_id, provider_message_id, tenant_id, message_id)
			SELECT cfg, pmid, tenant_id, id FROM u WHERE idx
			ON CONFLICT DO NOTHING
		), roll AS (
			-- the transitions this statement made, for the analytics rollup (see FoldAnalytics)
			INSERT INTO communication.analytics_deltas (tenant_id, channel, bucket, sent, failed)
			SELECT tenant_id, channel, date_trunc('hour', now(), 'UTC'), count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed')
			FROM u WHERE status IN ('sent', 'failed') GROUP BY tenant_id, channel
		), errs AS (
			SELECT tenant_id, channel, typ, cfg, code, count(*) AS n, max(msg) AS msg
			FROM u WHERE code <> '' GROUP BY tenant_id, channel, typ, cfg, code ORDER BY tenant_id, channel, typ, cfg, code
		), errs_hourly AS (
			INSERT INTO communication.provider_errors_hourly AS e
				(tenant_id, bucket, channel, provider_type, provider_config_id, error_code, count, last_message, last_at)
			SELECT tenant_id, date_trunc('hour', now(), 'UTC'), channel, typ, cfg, code, n, msg, now() FROM errs
			ON CONFLICT (tenant_id, bucket, channel, provider_type, provider_config_id, error_code)
			DO UPDATE SET count = e.count + excluded.count, last_message = excluded.last_message, last_at = excluded.last_at
		), errs_daily AS (
			INSERT INTO communication.provider_errors_daily AS e
				(tenant_id, bucket, channel, provider_type, provider_config_id, error_code, count, last_message, last_at)
			SELECT tenant_id, date_trunc('day', now(), 'UTC'), channel, typ, cfg, code, n, msg, now() FROM errs
			ON CONFLICT (tenant_id, bucket, channel, provider_type, provider_config_id, error_code)
			DO UPDATE SET count = e.count + excluded.count, last_message = excluded.last_message, last_at = excluded.last_at
		), dead AS (
			INSERT INTO communication.dead_letters (message_id, tenant_id, channel, provider_type, provider_config_id, error_code, error_message, attempts, envelope)
			SELECT id, tenant_id, channel, typ, cfg, code, msg, attempt, env::jsonb FROM u WHERE dl
		), sup AS (
			INSERT INTO communication.suppressions (tenant_id, channel, recipient, reason, detail, message_id)
			SELECT tenant_id, channel, sup_rcpt, sup_reason, msg, id FROM u WHERE sup_reason <> '' AND sup_rcpt <> ''
			ON CONFLICT DO NOTHING
		), done AS (
			DELETE FROM communication.dispatch_queue d USING u WHERE d.message_id = u.id AND u.status <> 'queued'
		), waiting AS (
			UPDATE communication.dispatch_queue d SET published_at = NULL, created_at = now()
			FROM u WHERE d.message_id = u.id AND u.status = 'queued'
		)
		INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, attempt, source, provider_config_id, provider_type, error_code, reason)
		SELECT id, tenant_id, created_at, event, attempt, 'internal', NULLIF(cfg, ''), typ, code, msg FROM u
		RETURNING message_id`
}
