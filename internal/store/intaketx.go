package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/logicspike/comms/pkg/message"
)

// IntakeTx gathers what a batch of accepted requests writes; the intake's rules decide, through
// its methods, what each message writes beyond its row. RecordMessages sends it all as one
// statement: a message whose recipient is suppressed, or whose idempotency key another message
// holds, writes nothing.
type IntakeTx struct {
	msgs []NewMessage
	w    []intakeWrites
	pos  map[string]int // message id → its position
	err  error
}

// intakeWrites are the writes of one accepted message beyond its row.
type intakeWrites struct {
	status message.Status // queued (Enqueue) or scheduled (Schedule)
	units  int            // accepted usage, in quota units (CountUsage); 0: not counted
}

// Record records m as a message with its first event, claiming its idempotency key if it has
// one. Every other method names a message recorded here first.
func (tx *IntakeTx) Record(m NewMessage) {
	tx.pos[m.ID] = len(tx.msgs)
	tx.msgs = append(tx.msgs, m)
	tx.w = append(tx.w, intakeWrites{})
}

// Enqueue queues the message now: its outbox row, which the publisher marks and the sweeper
// publishes if nobody does.
func (tx *IntakeTx) Enqueue(id string) {
	if w := tx.writes(id, "Enqueue"); w != nil {
		w.status = message.Queued
	}
}

// Schedule queues the message at its SendAt: its schedule entry, which ReleaseDue moves to the
// outbox then.
func (tx *IntakeTx) Schedule(id string) {
	w := tx.writes(id, "Schedule")
	switch {
	case w == nil:
	case tx.msgs[tx.pos[id]].SendAt == nil:
		tx.fail(fmt.Errorf("message %s: scheduled without a time", id))
	default:
		w.status = message.Scheduled
	}
}

// CountUsage counts the message as accepted, and units towards what its quota counts.
func (tx *IntakeTx) CountUsage(id string, units int) {
	if w := tx.writes(id, "CountUsage"); w != nil {
		w.units = units
	}
}

func (tx *IntakeTx) writes(id, what string) *intakeWrites {
	i, ok := tx.pos[id]
	if !ok {
		tx.fail(fmt.Errorf("%s for %s, which is not recorded", what, id))
		return nil
	}
	return &tx.w[i]
}

func (tx *IntakeTx) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

// RecordMessages calls fn to gather a batch of accepted messages and their writes, and records
// them in one statement (so one transaction) and one round trip. It returns what happened to each
// message, in the order recorded. Idempotency keys are enforced by the idempotency_keys primary
// key: a repeated (tenant, key) records nothing and reports the earlier message instead, found by
// a second statement only when a batch has such repeats.
//
// No explicit transaction: BEGIN and COMMIT were two more round trips per batch, and at a few
// hundred requests a second (batches of one or two) they were most of the intake's database
// traffic, holding connections idle in transaction while the process waited for CPU. The second
// statement needs none either: ON CONFLICT DO NOTHING skips a key only once its owner has
// committed, so a later statement sees the owner.
func (s *Store) RecordMessages(ctx context.Context, fn func(tx *IntakeTx) error) ([]Inserted, error) {
	tx := &IntakeTx{pos: map[string]int{}}
	if err := fn(tx); err != nil {
		return nil, err
	}
	if tx.err != nil {
		return nil, tx.err
	}
	for i, w := range tx.w {
		if w.status == "" {
			return nil, fmt.Errorf("message %s: neither enqueued nor scheduled", tx.msgs[i].ID)
		}
	}
	if len(tx.msgs) == 0 {
		return nil, nil
	}
	return s.recordMessages(ctx, tx.msgs, tx.w)
}

func (s *Store) recordMessages(ctx context.Context, msgs []NewMessage, writes []intakeWrites) ([]Inserted, error) {
	hashKey, err := s.recipientHashKey(ctx)
	if err != nil {
		return nil, err
	}
	n := len(msgs)
	var (
		id, tenant, channel, to, from, subject, text, html, meta, key = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		hash                                                          = make([][]byte, n)
		category                                                      = make([]string, n)
		rhash                                                         = make([]string, n) // suppressions are looked up by the hash
		smsEnc                                                        = make([]*string, n)
		smsUnits, smsSegs                                             = make([]*int32, n), make([]*int32, n)
		tmplKey, tmplLocale                                           = make([]*string, n), make([]*string, n)
		tmplVersion                                                   = make([]*int32, n)
		sendAt                                                        = make([]*time.Time, n)
		traceParent                                                   = make([]*string, n)
		recipientID                                                   = make([]*string, n)
		prefCategory                                                  = make([]*string, n)
		prefDefaultIn                                                 = make([]bool, n)
		inApp                                                         = make([]*string, n) // an in_app message's link and data
		push                                                          = make([]*string, n) // a push message's content past its title and body
		status                                                        = make([]string, n)
		units                                                         = make([]int32, n)
		created                                                       = madeTimes(msgIDs(msgs))
	)
	for i, m := range msgs {
		r := m.Request
		id[i], tenant[i], channel[i], to[i], from[i] = m.ID, m.TenantID, string(r.Channel), r.To, r.From
		subject[i], text[i], html[i], key[i], hash[i] = r.Subject, r.Text, r.HTML, m.IdempotencyKey, m.RequestHash
		category[i] = string(r.Category)
		rhash[i] = recipientHash(hashKey, m.TenantID, string(r.Channel), message.RecipientKey(r.Channel, r.To))
		if sz := m.SMS; sz != nil {
			u, g := int32(sz.Units), int32(sz.Segments)
			smsEnc[i], smsUnits[i], smsSegs[i] = &sz.Encoding, &u, &g
		}
		sendAt[i] = m.SendAt
		status[i], units[i] = string(writes[i].status), int32(writes[i].units)
		if m.TraceParent != "" {
			traceParent[i] = &m.TraceParent
		}
		if r.Recipient != "" {
			recipientID[i] = &msgs[i].Request.Recipient
		}
		if c := m.Preference; c != nil {
			prefCategory[i], prefDefaultIn[i] = &c.Category, c.DefaultIn
		}
		if t := m.Template; t != nil {
			v := int32(t.Version)
			tmplKey[i], tmplVersion[i], tmplLocale[i] = &t.Key, &v, &t.Locale
		}
		if category[i] == "" {
			category[i] = string(message.Transactional)
		}
		if c := r.InApp; r.Channel == message.InApp && c != nil {
			subject[i], text[i] = c.Title, c.Body
			extra := encodeInApp(c)
			inApp[i] = &extra
		}
		if c := r.Push; r.Channel == message.Push && c != nil {
			subject[i], text[i] = c.Title, c.Body
			extra := encodePush(c)
			push[i] = &extra
		}
		meta[i] = "{}"
		if len(r.Metadata) > 0 {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return nil, fmt.Errorf("encode metadata: %w", err)
			}
			meta[i] = string(b)
		}
		if hash[i] == nil {
			hash[i] = []byte{}
		}
	}

	out := make([]Inserted, n)
	err = func() error {
		rows, err := s.pool.Query(ctx, `
			WITH req AS (
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				                     $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::bytea[], $12::text[], $13::text[],
				                     $14::text[], $15::int[], $16::int[], $17::text[], $18::int[], $19::text[], $20::timestamptz[], $21::text[],
				                     $22::text[], $23::int[], $24::timestamptz[], $25::text[],
				                     $26::text[], $27::bool[], $28::jsonb[], $29::jsonb[])
				AS r(id, tenant_id, channel, recipient, sender, subject, body_text, body_html, metadata, idem_key, req_hash, category, rhash,
				     sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, send_at, trace_parent,
				     status, units, created_at, recipient_id, pref_category, pref_default_in, in_app, push)
			), sup AS (
				-- one primary-key lookup per request, behind OFFSET 0 so that no plan of this
				-- statement, generic or not, scans a tenant's suppression list (see ClaimMessages)
				SELECT req.id FROM req CROSS JOIN LATERAL (
					SELECT 1 FROM communication.suppressions s
					WHERE s.tenant_id = req.tenant_id AND s.channel = req.channel AND s.recipient_hash = req.rhash OFFSET 0
				) s
			), optout AS (
				-- the person's choice for the message's category on its channel, by their profile
				-- or their address (an opt-out under either wins), else the category's default
				SELECT req.id FROM req CROSS JOIN LATERAL (
					SELECT bool_and(p.opted_in) AS opted_in FROM communication.preferences p
					WHERE p.tenant_id = req.tenant_id AND p.category = req.pref_category AND p.channel = req.channel
					  AND p.subject IN ('address:' || req.rhash, 'recipient:' || req.recipient_id) OFFSET 0
				) p
				WHERE req.pref_category IS NOT NULL AND NOT coalesce(p.opted_in, req.pref_default_in)
				  AND req.id NOT IN (SELECT id FROM sup)
			), ok AS (
				SELECT * FROM req WHERE id NOT IN (SELECT id FROM sup) AND id NOT IN (SELECT id FROM optout)
			), idem AS (
				INSERT INTO communication.idempotency_keys (tenant_id, key, message_id, request_hash)
				SELECT tenant_id, idem_key, id, req_hash FROM ok WHERE idem_key <> ''
				ON CONFLICT (tenant_id, key) DO NOTHING
				RETURNING message_id
			), ins AS (
				INSERT INTO communication.message_logs
					(id, tenant_id, created_at, channel, recipient, sender, subject, body_text, body_html, metadata, idempotency_key, status, category,
					 sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, scheduled_at, trace_parent,
					 recipient_id, in_app, push)
				-- created when its id was made: the id finds the row's day (migration 0027)
				SELECT id, tenant_id, created_at, channel, recipient, sender, subject, body_text, body_html, metadata, NULLIF(idem_key, ''),
				       status, category,
				       sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, send_at, trace_parent,
				       recipient_id, in_app, push
				FROM ok WHERE idem_key = '' OR id IN (SELECT message_id FROM idem)
				RETURNING id, tenant_id, created_at, status, scheduled_at, channel, coalesce(template_key, '') AS tmpl, category
			), usage AS (
				-- accepted, and the units quotas count (see migration 0017)
				INSERT INTO communication.usage_deltas (tenant_id, day, channel, template_key, category, accepted, accepted_units)
				SELECT ins.tenant_id, (ins.created_at AT TIME ZONE 'UTC')::date, ins.channel, ins.tmpl, ins.category, count(*), sum(ok.units)
				FROM ins JOIN ok USING (id) WHERE ok.units > 0 GROUP BY 1, 2, 3, 4, 5
			), ev AS (
				INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source)
				SELECT id, tenant_id, created_at, status, 'internal' FROM ins
			), pending AS (
				-- the outbox: a scheduled message enters it when due (ReleaseDue)
				INSERT INTO communication.dispatch_queue (message_id, tenant_id, created_at)
				SELECT id, tenant_id, created_at FROM ins WHERE status = 'queued'
			), sched AS (
				INSERT INTO communication.schedule (message_id, tenant_id, due_at)
				SELECT id, tenant_id, scheduled_at FROM ins WHERE status = 'scheduled'
			)
			SELECT id, created_at, 0 FROM ins UNION ALL SELECT id, now(), 1 FROM sup UNION ALL SELECT id, now(), 2 FROM optout`,
			cachedPlan, id, tenant, channel, to, from, subject, text, html, meta, key, hash, category, rhash, smsEnc, smsUnits, smsSegs,
			tmplKey, tmplVersion, tmplLocale, sendAt, traceParent, status, units, created, recipientID,
			prefCategory, prefDefaultIn, inApp, push)
		if err != nil {
			return err
		}
		created := make(map[string]time.Time, n)
		refused := map[string]int{} // 1: suppressed, 2: opted out
		var (
			gotID string
			at    time.Time
			kind  int
		)
		_, err = pgx.ForEachRow(rows, []any{&gotID, &at, &kind}, func() error {
			if kind != 0 {
				refused[gotID] = kind
			} else {
				created[gotID] = at
			}
			return nil
		})
		if err != nil {
			return err
		}

		// Whatever was not inserted (nor suppressed) lost an idempotency race or repeated an
		// earlier key: report the message that owns the key.
		var lostTenant, lostKey []string
		for i := range msgs {
			if at, ok := created[id[i]]; ok {
				out[i] = Inserted{ID: id[i], CreatedAt: at}
			} else if k := refused[id[i]]; k != 0 {
				out[i] = Inserted{Suppressed: k == 1, OptedOut: k == 2}
			} else {
				lostTenant, lostKey = append(lostTenant, tenant[i]), append(lostKey, key[i])
			}
		}
		if len(lostKey) == 0 {
			return nil
		}
		owners, err := s.idempotencyOwners(ctx, lostTenant, lostKey)
		if err != nil {
			return err
		}
		for i := range msgs {
			if _, ok := created[id[i]]; ok || refused[id[i]] != 0 {
				continue
			}
			o, ok := owners[[2]string{tenant[i], key[i]}]
			if !ok {
				return fmt.Errorf("message %s was not inserted and owns no idempotency key", id[i])
			}
			out[i] = o.answer(hash[i])
		}
		return nil
	}()
	if err != nil {
		return nil, fmt.Errorf("record %d messages: %w", n, err)
	}
	return out, nil
}

func msgIDs(msgs []NewMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}
