package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
)

// streamHeartbeat is how often an idle stream sends a comment, so that proxies and the browser
// keep it open; each write may take streamWriteWait.
const (
	streamHeartbeat = 15 * time.Second
	streamWriteWait = 10 * time.Second
)

// streamInbox is GET /v1/inbox/stream, Server-Sent Events: "ready" with the unread count, then
// a "message" event (the item, with its id as the event id) for each message reaching the
// reader's inbox, and "resync" when arrivals were missed (reload the inbox). It ends when the
// token expires ("expired") or the process shuts down; EventSource then reconnects (with a new
// token after an expiry).
func (s *Server) streamInbox(w http.ResponseWriter, r *http.Request) {
	reader := readerFrom(r.Context())
	arrivals, done, ok := s.Inbox.Open(reader)
	if !ok {
		writeProblem(w, r, unavailable("this server is not streaming inboxes now; reconnect"))
		return
	}
	defer done()
	page, err := s.Inbox.Page(r.Context(), reader, domain.InboxFilter{Limit: 1})
	if err != nil {
		writePage(s, w, r, "inbox", []InboxItem{}, "", err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 2000\nevent: ready\ndata: {\"unread_count\":%d}\n\n", page.UnreadCount) {
		return
	}
	heartbeat := time.NewTicker(streamHeartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(time.Until(reader.ExpiresAt))
	defer expiry.Stop()
	for {
		var ok bool
		select {
		case <-r.Context().Done():
			return
		case <-expiry.C:
			send("event: expired\ndata: {}\n\n")
			return
		case <-heartbeat.C:
			ok = send(": keep-alive\n\n")
		case a, open := <-arrivals:
			switch {
			case !open:
				return
			case a.Resync:
				ok = send("event: resync\ndata: {}\n\n")
			default:
				it, err := s.Inbox.Item(r.Context(), reader, a.MessageID)
				if err != nil {
					ok = send("event: resync\ndata: {}\n\n") // archived or gone meanwhile, or the store is down
					break
				}
				b, _ := json.Marshal(InboxItemView(it))
				ok = send("id: %s\nevent: message\ndata: %s\n\n", it.ID, b)
			}
		}
		if !ok {
			return
		}
	}
}
