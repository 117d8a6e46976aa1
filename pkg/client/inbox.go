package client

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"net/http"
	"strings"
)

// The inbox calls authenticate with a recipient token (CreateInboxToken, or one the tenant's
// backend signs): c.WithKey(token).ListInbox(…) reads that person's inbox only.

// ListInbox returns a page of the token's inbox, newest first, with the unread count
// (GET /v1/inbox).
func (c *Client) ListInbox(ctx context.Context, p ListInboxParams) (InboxPage, error) {
	var out InboxPage
	err := c.Do(ctx, http.MethodGet, "/v1/inbox"+query(p), nil, &out)
	return out, err
}

// ReadAllInbox marks every message of the inbox read (POST /v1/inbox/read-all).
func (c *Client) ReadAllInbox(ctx context.Context) (InboxMarked, error) {
	var out InboxMarked
	err := c.Do(ctx, http.MethodPost, "/v1/inbox/read-all", nil, &out)
	return out, err
}

// MarkInboxSeen records that the person saw a message (POST /v1/inbox/{id}/seen).
func (c *Client) MarkInboxSeen(ctx context.Context, id string) (InboxItem, error) {
	return c.markInbox(ctx, id, "seen")
}

// MarkInboxRead records that the person read a message (POST /v1/inbox/{id}/read).
func (c *Client) MarkInboxRead(ctx context.Context, id string) (InboxItem, error) {
	return c.markInbox(ctx, id, "read")
}

// MarkInboxArchived takes a message out of the default list (POST /v1/inbox/{id}/archived).
func (c *Client) MarkInboxArchived(ctx context.Context, id string) (InboxItem, error) {
	return c.markInbox(ctx, id, "archived")
}

func (c *Client) markInbox(ctx context.Context, id, action string) (InboxItem, error) {
	var out InboxItem
	err := c.Do(ctx, http.MethodPost, "/v1/inbox/"+esc(id)+"/"+action, nil, &out)
	return out, err
}

// StreamEvent is one event of the inbox's live stream: ready (data: the unread count), message
// (data: the InboxItem, id: its message id), resync or expired (docs/inbox.md).
type StreamEvent struct {
	Type, ID string
	Data     string // JSON
}

// StreamInbox opens the inbox's live stream (GET /v1/inbox/stream) and yields its events until
// ctx ends, the stream ends (after expired) or it fails, which it yields.
func (c *Client) StreamInbox(ctx context.Context) iter.Seq2[StreamEvent, error] {
	return func(yield func(StreamEvent, error) bool) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/inbox/stream", nil)
		if err != nil {
			yield(StreamEvent{}, err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+c.key)
		req.Header.Set("Accept", "text/event-stream")
		// The stream outlives any client timeout: it ends with ctx.
		resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
		if err != nil {
			yield(StreamEvent{}, fmt.Errorf("GET /v1/inbox/stream: %w", err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			yield(StreamEvent{}, &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), RequestID: resp.Header.Get("X-Request-Id")})
			return
		}
		ev := StreamEvent{Type: "message"}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if ev.Data != "" || ev.Type != "message" {
					if !yield(ev, nil) {
						return
					}
				}
				ev = StreamEvent{Type: "message"}
			case field == "event":
				ev.Type = value
			case field == "id":
				ev.ID = value
			case field == "data":
				if ev.Data != "" {
					ev.Data += "\n"
				}
				ev.Data += value
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			yield(StreamEvent{}, err)
		}
	}
}

// GetInboxEmbed returns the <comms-inbox> element's script (GET /v1/inbox/embed.js).
func (c *Client) GetInboxEmbed(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/v1/inbox/embed.js", nil, &out)
	return out, err
}
