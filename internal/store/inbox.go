package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// inAppExtra is what an in_app message keeps beside its title and body (the subject and text).
type inAppExtra struct {
	ActionURL string          `json:"action_url,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

func encodeInApp(c *message.InAppContent) string {
	b, _ := json.Marshal(inAppExtra{ActionURL: c.ActionURL, Data: c.Data}) // validated JSON always encodes
	return string(b)
}

// inAppContent is a stored in_app message's content.
func inAppContent(subject, text string, extra []byte) *message.InAppContent {
	var x inAppExtra
	_ = json.Unmarshal(extra, &x) // written by encodeInApp
	return &message.InAppContent{Title: subject, Body: text, ActionURL: x.ActionURL, Data: x.Data}
}

// An inbox holds a recipient's in_app messages once they are sent, newest first, through the
// recipient-id index; an erased one is gone from it.
const inboxWhere = `tenant_id = $1 AND recipient_id = $2 AND channel = 'in_app' AND status = 'sent' AND erased_at IS NULL
	AND created_at <= now() + interval '1 hour'`

const inboxCols = `id, subject, body_text, coalesce(in_app, '{}'), category, created_at, sent_at, seen_at, read_at, archived_at`

func scanInboxItem(r pgx.Row) (domain.InboxItem, error) {
	var (
		it          domain.InboxItem
		title, body string
		extra       []byte
		category    string
	)
	err := r.Scan(&it.ID, &title, &body, &extra, &category, &it.CreatedAt, &it.SentAt, &it.SeenAt, &it.ReadAt, &it.ArchivedAt)
	it.Content, it.Category = *inAppContent(title, body, extra), message.Category(category)
	return it, err
}

// ListInbox returns a page of recipientID's inbox, newest first: its archived messages with
// f.Archived, else the others. It also counts the unread messages that are not archived.
func (s *Store) ListInbox(ctx context.Context, tenantID, recipientID string, f domain.InboxFilter) (domain.InboxPage, error) {
	var out domain.InboxPage
	args := []any{tenantID, recipientID, f.Archived, f.Limit + 1}
	after := ""
	if f.Cursor != "" {
		curAt, curID, err := decodeCursor(f.Cursor)
		if err != nil {
			return out, err
		}
		// the first condition names the weeks before the cursor's for the planner
		after, args = ` AND created_at <= $5 AND (created_at, id) < ($5, $6)`, append(args, curAt, curID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+inboxCols+` FROM communication.message_logs
		WHERE `+inboxWhere+` AND (archived_at IS NOT NULL) = $3`+after+`
		ORDER BY created_at DESC, id DESC LIMIT $4`, args...)
	if err != nil {
		return out, fmt.Errorf("list the inbox of %s: %w", recipientID, err)
	}
	if out.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.InboxItem, error) { return scanInboxItem(r) }); err != nil {
		return out, fmt.Errorf("list the inbox of %s: %w", recipientID, err)
	}
	if len(out.Items) > f.Limit {
		out.Items = out.Items[:f.Limit]
		last := out.Items[len(out.Items)-1]
		out.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM communication.message_logs
		WHERE `+inboxWhere+` AND read_at IS NULL AND archived_at IS NULL`, tenantID, recipientID).Scan(&out.UnreadCount)
	if err != nil {
		return out, fmt.Errorf("count the unread messages of %s: %w", recipientID, err)
	}
	return out, nil
}

// MarkInbox records that recipientID saw, read or archived (action) one of its inbox's messages,
// once: a second time keeps the first time. Reading a message is also seeing it. ErrNotFound: no
// such message in that inbox.
func (s *Store) MarkInbox(ctx context.Context, tenantID, recipientID, id string, action domain.InboxAction) (domain.InboxItem, error) {
	set := map[domain.InboxAction]string{
		domain.InboxSeen:     `seen_at = coalesce(seen_at, now())`,
		domain.InboxRead:     `seen_at = coalesce(seen_at, now()), read_at = coalesce(read_at, now())`,
		domain.InboxArchived: `archived_at = coalesce(archived_at, now())`,
	}[action]
	if set == "" {
		return domain.InboxItem{}, fmt.Errorf("mark inbox: unknown action %q", action)
	}
	// The first read is an event of the message (comms.message.read): read_at is then this
	// transaction's now().
	it, err := scanInboxItem(s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE communication.message_logs SET `+set+`
			WHERE `+inboxWhere+` AND id = $3 AND `+madeAt("created_at", "$3")+` RETURNING *
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source)
			SELECT id, tenant_id, created_at, 'read', 'internal' FROM u WHERE read_at = now()
		), counted AS (
			INSERT INTO communication.analytics_deltas (tenant_id, channel, bucket, read)
			SELECT tenant_id, channel, date_trunc('hour', now(), 'UTC'), 1 FROM u WHERE read_at = now()
		)
		SELECT `+inboxCols+` FROM u`, tenantID, recipientID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.InboxItem{}, ErrNotFound
	}
	if err != nil {
		return domain.InboxItem{}, fmt.Errorf("mark %s %s: %w", id, action, err)
	}
	return it, nil
}

// GetInboxItem is one message of recipientID's inbox, or ErrNotFound.
func (s *Store) GetInboxItem(ctx context.Context, tenantID, recipientID, id string) (domain.InboxItem, error) {
	it, err := scanInboxItem(s.pool.QueryRow(ctx, `SELECT `+inboxCols+` FROM communication.message_logs
		WHERE `+inboxWhere+` AND id = $3 AND `+madeAt("created_at", "$3"), tenantID, recipientID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.InboxItem{}, ErrNotFound
	}
	if err != nil {
		return domain.InboxItem{}, fmt.Errorf("get %s from the inbox of %s: %w", id, recipientID, err)
	}
	return it, nil
}

// ReadAllInbox marks every unread message of recipientID's inbox read (and seen), and returns how
// many it marked.
func (s *Store) ReadAllInbox(ctx context.Context, tenantID, recipientID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE communication.message_logs SET seen_at = coalesce(seen_at, now()), read_at = now()
			WHERE `+inboxWhere+` AND read_at IS NULL RETURNING id, tenant_id, channel, created_at
		), ev AS (
			INSERT INTO communication.message_events (message_id, tenant_id, message_at, status, source)
			SELECT id, tenant_id, created_at, 'read', 'internal' FROM u
		), counted AS (
			INSERT INTO communication.analytics_deltas (tenant_id, channel, bucket, read)
			SELECT tenant_id, channel, date_trunc('hour', now(), 'UTC'), count(*) FROM u GROUP BY 1, 2
		)
		SELECT count(*) FROM u`, tenantID, recipientID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read all of %s's inbox: %w", recipientID, err)
	}
	return n, nil
}
