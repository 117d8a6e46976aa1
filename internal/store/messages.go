package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// NewMessage is one accepted request to record.
type NewMessage struct {
	ID             string
	TenantID       string
	Request        message.Request
	IdempotencyKey string               // empty: none
	RequestHash    []byte               // identifies the body for idempotency comparisons
	SMS            *message.SMSSize     // an SMS body's encoding and segments; nil for email
	Template       *message.TemplateUse // what the body was rendered from; nil for ad-hoc bodies
	SendAt         *time.Time           // scheduled: queued at this time; nil: now
	TraceParent    string               // the request's W3C trace context; empty with tracing off
}

// Inserted says what happened to one NewMessage.
type Inserted struct {
	ID        string // the new message id, or the existing one for a repeated key
	CreatedAt time.Time
	// Duplicate: the idempotency key was already used; ID and CreatedAt are the earlier message's.
	Duplicate bool
	// Mismatch: the key was used before with a different body; nothing was recorded.
	Mismatch bool
	// Suppressed: the recipient is on the tenant's suppression list for the channel; nothing was
	// recorded. It is checked before the idempotency key.
	Suppressed bool
}

// InsertMessages records a batch of messages in status queued, each with its queued event, in one
// statement (so one transaction) and one round trip. Idempotency keys are enforced by the
// idempotency_keys primary key: a repeated (tenant, key) records nothing and reports the earlier
// message instead, found by a second statement only when a batch has such repeats.
//
// No explicit transaction: BEGIN and COMMIT were two more round trips per batch, and at a few
// hundred requests a second (batches of one or two) they were most of the intake's database
// traffic, holding connections idle in transaction while the process waited for CPU. The second
// statement needs none either: ON CONFLICT DO NOTHING skips a key only once its owner has
// committed, so a later statement sees the owner.
func (s *Store) InsertMessages(ctx context.Context, msgs []NewMessage) ([]Inserted, error) {
	n := len(msgs)
	var (
		id, tenant, channel, to, from, subject, text, html, meta, key = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		hash                                                          = make([][]byte, n)
		category                                                      = make([]string, n)
		rkey                                                          = make([]string, n)
		smsEnc                                                        = make([]*string, n)
		smsUnits, smsSegs                                             = make([]*int32, n), make([]*int32, n)
		tmplKey, tmplLocale                                           = make([]*string, n), make([]*string, n)
		tmplVersion                                                   = make([]*int32, n)
		sendAt                                                        = make([]*time.Time, n)
		traceParent                                                   = make([]*string, n)
	)
	for i, m := range msgs {
		r := m.Request
		id[i], tenant[i], channel[i], to[i], from[i] = m.ID, m.TenantID, string(r.Channel), r.To, r.From
		subject[i], text[i], html[i], key[i], hash[i] = r.Subject, r.Text, r.HTML, m.IdempotencyKey, m.RequestHash
		category[i] = string(r.Category)
		rkey[i] = message.RecipientKey(r.Channel, r.To)
		if sz := m.SMS; sz != nil {
			u, g := int32(sz.Units), int32(sz.Segments)
			smsEnc[i], smsUnits[i], smsSegs[i] = &sz.Encoding, &u, &g
		}
		sendAt[i] = m.SendAt
		if m.TraceParent != "" {
			traceParent[i] = &m.TraceParent
		}
		if t := m.Template; t != nil {
			v := int32(t.Version)
			tmplKey[i], tmplVersion[i], tmplLocale[i] = &t.Key, &v, &t.Locale
		}
		if category[i] == "" {
			category[i] = string(message.Transactional)
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
	err := func() error {
		rows, err := s.pool.Query(ctx, `
			WITH req AS (
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				                     $7::text[], $8::text[], $9::jsonb[], $10::text[], $11::bytea[], $12::text[], $13::text[],
				                     $14::text[], $15::int[], $16::int[], $17::text[], $18::int[], $19::text[], $20::timestamptz[], $21::text[])
				AS r(id, tenant_id, channel, recipient, sender, subject, body_text, body_html, metadata, idem_key, req_hash, category, rkey,
				     sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, send_at, trace_parent)
			), sup AS (
				-- one primary-key lookup per request, behind OFFSET 0 so that no plan of this
				-- statement, generic or not, scans a tenant's suppression list (see ClaimMessages)
				SELECT req.id FROM req CROSS JOIN LATERAL (
					SELECT 1 FROM communication.suppressions s
					WHERE s.tenant_id = req.tenant_id AND s.channel = req.channel AND s.recipient = req.rkey OFFSET 0
				) s
			), ok AS (
				SELECT * FROM req WHERE id NOT IN (SELECT id FROM sup)
			), idem AS (
				INSERT INTO communication.idempotency_keys (tenant_id, key, message_id, request_hash)
				SELECT tenant_id, idem_key, id, req_hash FROM ok WHERE idem_key <> ''
				ON CONFLICT (tenant_id, key) DO NOTHING
				RETURNING message_id
			), ins AS (
				INSERT INTO communication.message_logs
					(id, tenant_id, channel, recipient, sender, subject, body_text, body_html, metadata, idempotency_key, status, category,
					 sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, scheduled_at, trace_parent)
				SELECT id, tenant_id, channel, recipient, sender, subject, body_text, body_html, metadata, NULLIF(idem_key, ''),
				       CASE WHEN send_at IS NULL THEN 'queued' ELSE 'scheduled' END, category,
				       sms_encoding, sms_characters, sms_segments, template_key, template_version, template_locale, send_at, trace_parent
				FROM ok WHERE idem_key = '' OR id IN (SELECT message_id FROM idem)
				RETURNING id, tenant_id, created_at, status, scheduled_at, channel, coalesce(template_key, '') AS tmpl, category, sms_segments
			), usage AS (
				-- accepted, and the units quotas count (see migration 0017)
				INSERT INTO communication.usage_deltas (tenant_id, day, channel, template_key, category, accepted, accepted_units)
				SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, channel, tmpl, category, count(*),
				       sum(CASE WHEN channel = 'sms' THEN coalesce(sms_segments, 1) ELSE 1 END)
				FROM ins GROUP BY 1, 2, 3, 4, 5
			), ev AS (
				INSERT INTO communication.message_events (message_id, tenant_id, status, source)
				SELECT id, tenant_id, status, 'internal' FROM ins
			), pending AS (
				-- the outbox: a scheduled message enters it when due (ReleaseDue)
				INSERT INTO communication.dispatch_queue (message_id, tenant_id, created_at)
				SELECT id, tenant_id, created_at FROM ins WHERE status = 'queued'
			), sched AS (
				INSERT INTO communication.schedule (message_id, tenant_id, due_at)
				SELECT id, tenant_id, scheduled_at FROM ins WHERE status = 'scheduled'
			)
			SELECT id, created_at, false FROM ins UNION ALL SELECT id, now(), true FROM sup`,
			cachedPlan, id, tenant, channel, to, from, subject, text, html, meta, key, hash, category, rkey, smsEnc, smsUnits, smsSegs,
			tmplKey, tmplVersion, tmplLocale, sendAt, traceParent)
		if err != nil {
			return err
		}
		created := make(map[string]time.Time, n)
		suppressed := map[string]bool{}
		var (
			gotID string
			at    time.Time
			sup   bool
		)
		_, err = pgx.ForEachRow(rows, []any{&gotID, &at, &sup}, func() error {
			if sup {
				suppressed[gotID] = true
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
			} else if suppressed[id[i]] {
				out[i] = Inserted{Suppressed: true}
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
			if _, ok := created[id[i]]; ok || suppressed[id[i]] {
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
		return nil, fmt.Errorf("insert %d messages: %w", n, err)
	}
	return out, nil
}

type idemOwner struct {
	id   string
	hash []byte
	at   time.Time
}

// answer is what a request with hash gets for a key this owner holds.
func (o idemOwner) answer(hash []byte) Inserted {
	return Inserted{ID: o.id, CreatedAt: o.at, Duplicate: true, Mismatch: !bytes.Equal(o.hash, hash)}
}

// ListRepeats answers requests that are turned away before they are inserted (a quota reached): for
// each of tenantID's keys already used, what InsertMessages would answer a request with hash,
// by key; keys never used are absent.
func (s *Store) ListRepeats(ctx context.Context, tenantID string, keys []string, hash []byte) (map[string]Inserted, error) {
	tenants := make([]string, len(keys))
	for i := range keys {
		tenants[i] = tenantID
	}
	owners, err := s.idempotencyOwners(ctx, tenants, keys)
	if err != nil {
		return nil, fmt.Errorf("look up idempotency keys: %w", err)
	}
	out := make(map[string]Inserted, len(owners))
	for k, o := range owners {
		out[k[1]] = o.answer(hash)
	}
	return out, nil
}

const messageCols = `id, tenant_id, channel, recipient, sender, subject, body_text, body_html, metadata,
	status, attempts, coalesce(idempotency_key, ''), coalesce(provider_config_id, ''), provider_type,
	provider_message_id, error_code, error_message, created_at, updated_at, sent_at, cost, cost_currency, category,
	delivered_at, opened_at, clicked_at, sms_encoding, sms_characters, sms_segments,
	template_key, template_version, template_locale, scheduled_at`

// messageRow receives the columns of messageCols, in order.
type messageRow struct {
	m                     message.Message
	errCode, errMsg       string
	smsEncoding           *string
	smsUnits, smsSegments *int
	tmplKey, tmplLocale   *string
	tmplVersion           *int
}

// dest lists where each of messageCols goes, for Scan.
func (r *messageRow) dest() []any {
	m := &r.m
	return []any{&m.ID, &m.TenantID, &m.Channel, &m.To, &m.From, &m.Subject, &m.Text, &m.HTML, &m.Metadata,
		&m.Status, &m.Attempts, &m.IdempotencyKey, &m.ProviderConfigID, &m.ProviderType,
		&m.ProviderMessageID, &r.errCode, &r.errMsg, &m.CreatedAt, &m.UpdatedAt, &m.SentAt, &m.Cost, &m.CostCurrency, &m.Category,
		&m.DeliveredAt, &m.OpenedAt, &m.ClickedAt, &r.smsEncoding, &r.smsUnits, &r.smsSegments,
		&r.tmplKey, &r.tmplVersion, &r.tmplLocale, &m.ScheduledAt}
}

// message assembles the scanned row.
func (r *messageRow) message() message.Message {
	m := r.m
	if r.errCode != "" || r.errMsg != "" {
		m.Error = &message.Error{Code: r.errCode, Message: r.errMsg}
	}
	if r.smsEncoding != nil && r.smsUnits != nil && r.smsSegments != nil {
		m.SMS = &message.SMSSize{Encoding: *r.smsEncoding, Units: *r.smsUnits, Segments: *r.smsSegments}
	}
	if r.tmplKey != nil && r.tmplVersion != nil && r.tmplLocale != nil {
		m.Template = &message.TemplateUse{Key: *r.tmplKey, Version: *r.tmplVersion, Locale: *r.tmplLocale}
	}
	return m
}

func scanMessage(row pgx.Row) (message.Message, error) {
	var r messageRow
	err := row.Scan(r.dest()...)
	return r.message(), err
}

// GetMessage returns tenantID's message id with its events, or ErrNotFound (also when the message
// belongs to another tenant).
func (s *Store) GetMessage(ctx context.Context, tenantID, id string) (message.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx,
		`SELECT `+messageCols+` FROM communication.message_logs WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return message.Message{}, ErrNotFound
	}
	if err != nil {
		return message.Message{}, fmt.Errorf("get message %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT status, attempt, source, coalesce(provider_config_id, ''), provider_type, error_code, reason, occurred_at
		FROM communication.message_events WHERE tenant_id = $1 AND message_id = $2 ORDER BY occurred_at, id`, tenantID, id)
	if err != nil {
		return message.Message{}, fmt.Errorf("get events of %s: %w", id, err)
	}
	m.Events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (message.Event, error) {
		var e message.Event
		err := r.Scan(&e.Status, &e.Attempt, &e.Source, &e.ProviderConfigID, &e.ProviderType, &e.ErrorCode, &e.Reason, &e.OccurredAt)
		return e, err
	})
	if err != nil {
		return message.Message{}, fmt.Errorf("get events of %s: %w", id, err)
	}
	return m, nil
}

// ErrBadCursor is returned for a cursor this server did not make.
var ErrBadCursor = errors.New("malformed cursor")

// ListMessages returns tenantID's messages newest first, and the cursor of the next page ("" when
// this is the last).
func (s *Store) ListMessages(ctx context.Context, tenantID string, f domain.MessageFilter) ([]message.Message, string, error) {
	var (
		curAt time.Time
		curID string
	)
	if f.Cursor != "" {
		var err error
		if curAt, curID, err = decodeCursor(f.Cursor); err != nil {
			return nil, "", err
		}
	}
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	w.addIf(f.Status != "", "status = ?", f.Status)
	w.addIf(f.Channel != "", "channel = ?", f.Channel)
	w.addIf(f.Recipient != "", "recipient = ?", f.Recipient)
	w.addIf(f.Template != "", "template_key = ?", f.Template)
	w.addIf(!f.CreatedAfter.IsZero(), "created_at >= ?", f.CreatedAfter)
	w.addIf(!f.CreatedBefore.IsZero(), "created_at < ?", f.CreatedBefore)
	if f.Cursor != "" {
		w.add("(created_at, id) < (?, ?)", curAt, curID)
	}
	q := `SELECT ` + messageCols + ` FROM communication.message_logs WHERE ` + w.sql() +
		` ORDER BY created_at DESC, id DESC LIMIT ` + w.arg(f.Limit+1)
	args := w.args
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list messages: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (message.Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list messages: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return out, next, nil
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return at, id, nil
}
