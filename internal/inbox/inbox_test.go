package inbox_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

type inboxPage struct {
	Data        []api.InboxItem `json:"data"`
	Next        string          `json:"next_cursor"`
	UnreadCount int             `json:"unread_count"`
}

// An in_app message goes to its recipient's inbox through the worker with no provider; the
// tenant's backend asks for a recipient token, and the person's browser reads its inbox with it:
// newest first, in pages, with the unread count; seeing, reading (once: the first time stays),
// archiving and reading all. A token reads only its own person's inbox of its own tenant; an API
// key, a forged, altered or expired token is a 401; a message not in the inbox is a 404.
func TestAnInboxIsReadWithARecipientToken(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.StartDeliverer(webhooks.Config{})
	tid, key := s.Tenant()
	otherTenant, otherKey := s.Tenant()
	reads := s.EventSink(key, event.Read)
	for _, id := range []string{"u_1", "u_2"} {
		if resp := s.Do("PUT", "/v1/recipients/"+id, key, map[string]any{"email": id + "@example.com"}, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("profile %s: %d", id, resp.StatusCode)
		}
	}
	send := func(recipient, title string) string {
		t.Helper()
		return s.Send(key, "", message.Request{Channel: message.InApp, Recipient: recipient,
			InApp: &message.InAppContent{Title: title, Body: "b " + title, ActionURL: "https://app.acme.example/orders/1", Data: []byte(`{"order":1}`)}})
	}
	first, second, third := send("u_1", "one"), send("u_1", "two"), send("u_1", "three")
	send("u_2", "for someone else")
	s.WaitAllFinal(30 * time.Second)
	var m message.Message
	if resp := s.Do("GET", "/v1/messages/"+first, key, nil, nil, &m); resp.StatusCode != 200 || m.Status != message.Sent || m.ProviderType != "inbox" ||
		m.InApp == nil || m.InApp.Title != "one" || m.InApp.ActionURL != "https://app.acme.example/orders/1" || string(m.InApp.Data) != `{"order":1}` || m.RecipientID != "u_1" {
		t.Fatalf("the in_app message as the tenant reads it: %d %+v %+v", resp.StatusCode, m, m.InApp)
	}

	var tok api.InboxToken
	if resp := s.Do("POST", "/v1/recipients/u_1/inbox-tokens", key, map[string]any{"ttl_seconds": 600}, nil, &tok); resp.StatusCode != 201 ||
		tok.Token == "" || time.Until(tok.ExpiresAt) > 601*time.Second || time.Until(tok.ExpiresAt) < 590*time.Second {
		t.Fatalf("inbox token: %d %+v", resp.StatusCode, tok)
	}
	if resp := s.Do("POST", "/v1/recipients/u_9/inbox-tokens", key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("a token for no profile: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/recipients/u_1/inbox-tokens", otherKey, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("another tenant's token for the profile: %d", resp.StatusCode)
	}
	as := func(method, path, token string, out any) int {
		t.Helper()
		return s.Do(method, path, token, nil, nil, out).StatusCode
	}

	var page inboxPage
	if st := as("GET", "/v1/inbox?limit=2", tok.Token, &page); st != 200 || len(page.Data) != 2 || page.Data[0].ID != third || page.Data[1].ID != second ||
		page.UnreadCount != 3 || page.Next == "" || page.Data[0].Title != "three" || string(page.Data[0].Data) != `{"order":1}` {
		t.Fatalf("the first page: %d %+v", st, page)
	}
	if st := as("GET", "/v1/inbox?limit=2&cursor="+page.Next, tok.Token, &page); st != 200 || len(page.Data) != 1 || page.Data[0].ID != first || page.Next != "" {
		t.Fatalf("the second page: %d %+v", st, page)
	}
	var it api.InboxItem
	if st := as("POST", "/v1/inbox/"+first+"/read", tok.Token, &it); st != 200 || it.ReadAt == nil || it.SeenAt == nil {
		t.Fatalf("read: %d %+v", st, it)
	}
	readAt := *it.ReadAt
	if st := as("POST", "/v1/inbox/"+first+"/read", tok.Token, &it); st != 200 || !it.ReadAt.Equal(readAt) {
		t.Fatalf("read again: %d %+v, want the first time %s", st, it.ReadAt, readAt)
	}
	it = api.InboxItem{}
	if st := as("POST", "/v1/inbox/"+second+"/seen", tok.Token, &it); st != 200 || it.SeenAt == nil || it.ReadAt != nil {
		t.Fatalf("seen: %d %+v", st, it)
	}
	if st := as("POST", "/v1/inbox/"+third+"/archived", tok.Token, &it); st != 200 || it.ArchivedAt == nil {
		t.Fatalf("archived: %d %+v", st, it)
	}
	if st := as("GET", "/v1/inbox", tok.Token, &page); st != 200 || len(page.Data) != 2 || page.UnreadCount != 1 {
		t.Fatalf("after reading one and archiving one: %d %+v", st, page)
	}
	if st := as("GET", "/v1/inbox?archived=true", tok.Token, &page); st != 200 || len(page.Data) != 1 || page.Data[0].ID != third {
		t.Fatalf("the archived: %d %+v", st, page)
	}
	var marked struct{ Marked int64 }
	if st := as("POST", "/v1/inbox/read-all", tok.Token, &marked); st != 200 || marked.Marked != 2 {
		t.Fatalf("read all: %d %+v (the unread one, and the archived one)", st, marked)
	}
	if st := as("GET", "/v1/inbox?token="+url.QueryEscape(tok.Token), "", &page); st != 200 || page.UnreadCount != 0 {
		t.Fatalf("with the token as a query parameter: %d %+v", st, page)
	}
	// Each message read is one comms.message.read: the first read of each, read-all's included.
	got := s.WaitEvents(reads, 3, 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	subjects := map[string]bool{}
	for _, e := range reads() {
		subjects[e.Subject] = true
	}
	if len(reads()) != 3 || len(subjects) != 3 || !subjects[first] || !subjects[second] || !subjects[third] {
		t.Fatalf("read events: %+v", got)
	}
	// The analytics count each first read once, beside the in_app messages sent: a read rate of
	// 3 in 4 (reading first again and read-all did not count twice).
	from := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	var ts struct{ Totals api.Bucket }
	for deadline := time.Now().Add(20 * time.Second); ts.Totals.Read != 3 || ts.Totals.Sent != 4; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("in_app analytics: %+v, want 4 sent and 3 read", ts.Totals)
		}
		if resp := s.Do("GET", "/v1/analytics/timeseries?interval=hour&channel=in_app&from="+from, key, nil, nil, &ts); resp.StatusCode != 200 {
			t.Fatalf("timeseries: %d", resp.StatusCode)
		}
	}

	// Another person's message, an API key, and tokens that are not ours.
	var other api.InboxToken
	s.Do("POST", "/v1/recipients/u_2/inbox-tokens", key, nil, nil, &other)
	if st := as("POST", "/v1/inbox/"+first+"/read", other.Token, nil); st != 404 {
		t.Fatalf("u_2 reads u_1's message: %d", st)
	}
	if st := as("GET", "/v1/inbox", other.Token, &page); st != 200 || len(page.Data) != 1 || page.Data[0].Title != "for someone else" {
		t.Fatalf("u_2's inbox: %d %+v", st, page)
	}
	payload, rest, _ := strings.Cut(tok.Token, ".")
	fields, _ := base64.RawURLEncoding.DecodeString(payload)
	moved := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(fields), tid, otherTenant, 1))) + "." + rest
	for name, bad := range map[string]string{"an API key": key, "a forged token": "eyJ4Il0.v1.AAAA", "nothing": "",
		"an altered token": payload + "x." + rest, "moved to another tenant": moved} {
		if st := as("GET", "/v1/inbox", bad, nil); st != 401 {
			t.Errorf("%s: %d", name, st)
		}
	}
}

// An in_app message names a recipient profile and carries its content in in_app, with a title
// or a body, and nothing of the other channels: each fault is a 422 naming its field.
func TestAnInAppMessageIsValidated(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	for field, body := range map[string]map[string]any{
		"recipient":         {"channel": "in_app", "in_app": map[string]any{"title": "t"}},
		"to":                {"channel": "in_app", "recipient": "u_1", "to": "u_1", "in_app": map[string]any{"title": "t"}},
		"in_app":            {"channel": "in_app", "recipient": "u_1"},
		"text":              {"channel": "in_app", "recipient": "u_1", "text": "t", "in_app": map[string]any{"title": "t"}},
		"in_app.action_url": {"channel": "in_app", "recipient": "u_1", "in_app": map[string]any{"title": "t", "action_url": "javascript:alert(1)"}},
		"in_app.data":       {"channel": "in_app", "recipient": "u_1", "in_app": map[string]any{"title": "t", "data": []int{1}}},
		"in_app.title":      {"channel": "in_app", "recipient": "u_1", "in_app": map[string]any{"title": strings.Repeat("x", 201)}},
	} {
		var p api.Problem
		resp := s.Do("POST", "/v1/messages", key, body, nil, &p)
		if resp.StatusCode != 422 || len(p.Errors) == 0 || p.Errors[0].Field != field {
			t.Errorf("%s: %d %+v", field, resp.StatusCode, p.Errors)
		}
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, name, data string }

// openStream reads GET /v1/inbox/stream with token until the stream ends or the test does.
func openStream(t *testing.T, s *stacktest.Stack, token string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/inbox/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	// Not the stack's client: its spec check reads a whole body, and a stream has no end.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch k, v, _ := strings.Cut(line, ": "); {
			case line == "":
				if e.name != "" {
					events <- e
				}
				e = sseEvent{}
			case k == "id":
				e.id = v
			case k == "event":
				e.name = v
			case k == "data":
				e.data = v
			}
		}
	}()
	return events
}

// next is the next event of a stream, failing the test if none comes within a while.
func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return sseEvent{}
}

// An open stream gets "ready" with the unread count, then each message reaching its own inbox as
// a "message" event (the item, its id as the event id), and nothing of another person's; when
// its token expires it gets "expired" and ends.
func TestAnOpenStreamGetsItsInboxsNewMessages(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	token := func(id string, ttl int) string {
		t.Helper()
		if resp := s.Do("PUT", "/v1/recipients/"+id, key, map[string]any{}, nil, nil); resp.StatusCode != 201 && resp.StatusCode != 200 {
			t.Fatalf("profile: %d", resp.StatusCode)
		}
		var tok api.InboxToken
		if resp := s.Do("POST", "/v1/recipients/"+id+"/inbox-tokens", key, map[string]any{"ttl_seconds": ttl}, nil, &tok); resp.StatusCode != 201 {
			t.Fatalf("token: %d", resp.StatusCode)
		}
		return tok.Token
	}
	send := func(recipient, title string) string {
		return s.Send(key, "", message.Request{Channel: message.InApp, Recipient: recipient, InApp: &message.InAppContent{Title: title}})
	}
	mineToken, theirsToken := token("u_1", 600), token("u_2", 600)
	before := send("u_1", "before the stream")
	s.WaitAllFinal(30 * time.Second)
	mine, theirs := openStream(t, s, mineToken), openStream(t, s, theirsToken)
	if e := next(t, mine); e.name != "ready" || e.data != `{"unread_count":1}` {
		t.Fatalf("first event: %+v", e)
	}
	next(t, theirs)

	other := send("u_2", "for u_2")
	if e := next(t, theirs); e.name != "message" || e.id != other {
		t.Fatalf("u_2's stream: %+v", e)
	}
	id := send("u_1", "hello")
	e := next(t, mine)
	// The first message's announcement may reach the stream after it opened, though ready counted
	// it (docs/inbox.md): clients tell it by its id.
	for e.name == "message" && e.id == before {
		e = next(t, mine)
	}
	var it api.InboxItem
	if e.name != "message" || e.id != id || json.Unmarshal([]byte(e.data), &it) != nil || it.Title != "hello" || it.ID != id {
		t.Fatalf("u_1's stream: %+v (u_2's message was %s)", e, other)
	}

	short := openStream(t, s, token("u_3", 2))
	if e := next(t, short); e.name != "ready" {
		t.Fatalf("first event: %+v", e)
	}
	if e := next(t, short); e.name != "expired" {
		t.Fatalf("at the token's expiry: %+v", e)
	}
	if _, open := <-short; open {
		t.Fatal("the stream went on after its token expired")
	}
}
