package store

import (
	"bytes"
	"context"
	"encoding/base64"
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
	SendAt         *time.Time           // when IntakeTx.Schedule queues it; nil for a message queued now
	TraceParent    string               // the request's W3C trace context; empty with tracing off
	Preference     *PreferenceCheck     // nil: nobody's preferences decide whether it is sent
}

// PreferenceCheck is a message's category as its recipient's preferences see it.
type PreferenceCheck struct {
	Category  string // the tenant's category key
	DefaultIn bool   // whether someone who chose nothing receives it
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
	// OptedOut: the recipient opted out of the message's category on its channel (or did not opt
	// in to one that is out by default); nothing was recorded. Checked after Suppressed.
	OptedOut bool
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
// each of tenantID's keys already used, what RecordMessages would answer a request with hash,
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
	delivered_at, opened_at, clicked_at, content_purged_at, erased_at, sms_encoding, sms_characters, sms_segments,
	template_key, template_version, template_locale, scheduled_at, coalesce(recipient_id, ''), direction, in_app, push`

// messageRow receives the columns of messageCols, in order.
type messageRow struct {
	m                     message.Message
	errCode, errMsg       string
	smsEncoding           *string
	smsUnits, smsSegments *int
	tmplKey, tmplLocale   *string
	tmplVersion           *int
	inApp, push           []byte
}

// dest lists where each of messageCols goes, for Scan.
func (r *messageRow) dest() []any {
	m := &r.m
	return []any{&m.ID, &m.TenantID, &m.Channel, &m.To, &m.From, &m.Subject, &m.Text, &m.HTML, &m.Metadata,
		&m.Status, &m.Attempts, &m.IdempotencyKey, &m.ProviderConfigID, &m.ProviderType,
		&m.ProviderMessageID, &r.errCode, &r.errMsg, &m.CreatedAt, &m.UpdatedAt, &m.SentAt, &m.Cost, &m.CostCurrency, &m.Category,
		&m.DeliveredAt, &m.OpenedAt, &m.ClickedAt, &m.ContentPurgedAt, &m.ErasedAt, &r.smsEncoding, &r.smsUnits, &r.smsSegments,
		&r.tmplKey, &r.tmplVersion, &r.tmplLocale, &m.ScheduledAt, &m.RecipientID, &m.Direction, &r.inApp, &r.push}
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
	if m.Channel == message.InApp && m.ErasedAt == nil {
		m.InApp = inAppContent(m.Subject, m.Text, r.inApp)
	}
	if m.Channel == message.Push && m.ErasedAt == nil {
		m.Push = pushContent(m.Subject, m.Text, r.push)
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
		`SELECT `+messageCols+` FROM communication.message_logs WHERE tenant_id = $1 AND id = $2 AND `+madeAt("created_at", "$2"), tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return message.Message{}, ErrNotFound
	}
	if err != nil {
		return message.Message{}, fmt.Errorf("get message %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT status, attempt, source, coalesce(provider_config_id, ''), provider_type, error_code, reason, occurred_at
		FROM communication.message_events WHERE tenant_id = $1 AND message_id = $2 AND message_at = $3
		ORDER BY occurred_at, id`, tenantID, id, m.CreatedAt)
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
	if m.Channel == message.Push {
		ds, err := s.PushDeliveries(ctx, tenantID, id)
		if err != nil {
			return message.Message{}, err
		}
		for _, d := range ds {
			v := message.Delivery{DeviceID: d.DeviceID, Platform: string(d.Platform), Status: d.Status, ProviderConfigID: d.ProviderConfigID,
				ProviderType: d.ProviderType, ProviderMessageID: d.ProviderMessageID, Attempt: d.Attempt, UpdatedAt: d.UpdatedAt}
			if d.ErrorCode != "" {
				v.Error = &message.Error{Code: d.ErrorCode, Message: d.ErrorMessage}
			}
			m.Deliveries = append(m.Deliveries, v)
		}
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
	// No message is younger than now (its created_at is its id's time): the days made ahead are
	// not searched.
	w.add("created_at <= now() + interval '1 hour'")
	w.addIf(f.Status != "", "status = ?", f.Status)
	w.addIf(f.Channel != "", "channel = ?", f.Channel)
	if f.Recipient != "" {
		// as the index has it: "Ann <Ann@Example.com>" is found by ann@example.com
		ch := message.SMS
		if strings.Contains(f.Recipient, "@") {
			ch = message.Email
		}
		w.add("communication.recipient_key(channel, recipient) = ?", message.RecipientKey(ch, f.Recipient))
	}
	w.addIf(f.RecipientID != "", "recipient_id = ?", f.RecipientID)
	w.addIf(f.Template != "", "template_key = ?", f.Template)
	w.addIf(!f.CreatedAfter.IsZero(), "created_at >= ?", f.CreatedAfter)
	w.addIf(!f.CreatedBefore.IsZero(), "created_at < ?", f.CreatedBefore)
	if f.Cursor != "" {
		// the first condition names the days before the cursor's for the planner
		w.add("created_at <= ?", curAt)
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
	out, next := page(out, f.Limit, func(m message.Message) string { return encodeCursor(m.CreatedAt, m.ID) })
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
