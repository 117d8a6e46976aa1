package inbox

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/platform/invalidate"
)

// The live stream (GET /v1/inbox/stream): a worker announces each in_app message it puts in an
// inbox on Redis pub/sub; every API process's Hub hands the announcement to the streams open on
// that inbox, which send the message to the browser at once.

// NoticeChannel is the pub/sub channel after the deployment's Redis prefix; the payload is
// "<tenant id> <recipient id> <message id>".
const NoticeChannel = "inbox-messages"

// streamBuffer is how many arrivals a stream may fall behind by before it is told to reload.
const streamBuffer = 64

// Announcer publishes arrivals; the worker calls it once a message is in its inbox.
type Announcer struct {
	rdb    *redis.Client
	prefix string
	log    *slog.Logger
}

// NewAnnouncer publishes on prefix+NoticeChannel.
func NewAnnouncer(rdb *redis.Client, prefix string, log *slog.Logger) *Announcer {
	return &Announcer{rdb: rdb, prefix: prefix, log: log}
}

// Arrived announces that messageID is in tenantID's recipientID's inbox. A lost announcement
// only delays the message to the stream's next reload: the inbox itself has it.
func (a *Announcer) Arrived(ctx context.Context, tenantID, recipientID, messageID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := a.rdb.Publish(ctx, a.prefix+NoticeChannel, tenantID+" "+recipientID+" "+messageID).Err(); err != nil {
		a.log.WarnContext(ctx, "could not announce an inbox message to open streams", "tenant_id", tenantID, "err", err)
	}
}

// Arrival is a message arriving in a stream's inbox; Resync (no message) says arrivals were
// missed, and the stream's reader should reload the inbox.
type Arrival struct {
	MessageID string
	Resync    bool
}

// Hub hands arrivals to the streams open in this process.
type Hub struct {
	rdb    *redis.Client
	prefix string
	log    *slog.Logger

	mu     sync.Mutex
	subs   map[string]map[*stream]struct{} // by "<tenant> <recipient>"
	closed bool
}

type stream struct {
	ch     chan Arrival
	behind bool // an arrival was dropped: a Resync is owed
}

// NewHub returns a hub fed by rdb's notices; Run it.
func NewHub(rdb *redis.Client, prefix string, log *slog.Logger) *Hub {
	return &Hub{rdb: rdb, prefix: prefix, log: log, subs: map[string]map[*stream]struct{}{}}
}

// Open registers a stream on r's inbox. Its channel closes when the hub stops (the process is
// shutting down); call done when the stream ends. ok is false once the hub has stopped.
func (h *Hub) Open(r Reader) (arrivals <-chan Arrival, done func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	key := r.TenantID + " " + r.RecipientID
	s := &stream{ch: make(chan Arrival, streamBuffer)}
	if h.subs[key] == nil {
		h.subs[key] = map[*stream]struct{}{}
	}
	h.subs[key][s] = struct{}{}
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, open := h.subs[key][s]; open {
			delete(h.subs[key], s)
			if len(h.subs[key]) == 0 {
				delete(h.subs, key)
			}
		}
	}, true
}

// Streams counts the streams open in this process.
func (h *Hub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, set := range h.subs {
		n += len(set)
	}
	return n
}

// Run hands out arrivals until ctx ends, then closes every stream. After a gap in the
// subscription (a Redis outage) every stream is told to reload.
func (h *Hub) Run(ctx context.Context) {
	invalidate.Subscribe(ctx, h.rdb, h.prefix+NoticeChannel, h.log, h.resyncAll, h.deliver)
	h.Close()
}

// Close ends every stream and refuses new ones: the API server calls it as it starts shutting
// down, so that open streams do not hold the shutdown up (browsers reconnect to another replica).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for _, set := range h.subs {
		for s := range set {
			close(s.ch)
		}
	}
	clear(h.subs)
}

func (h *Hub) deliver(payload string) {
	tenant, rest, _ := strings.Cut(payload, " ")
	recipient, id, ok := strings.Cut(rest, " ")
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[tenant+" "+recipient] {
		s.send(Arrival{MessageID: id})
	}
}

func (h *Hub) resyncAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.subs {
		for s := range set {
			s.send(Arrival{Resync: true})
		}
	}
}

// send queues a without blocking the hub: a stream too far behind drops it and is owed a Resync,
// which it gets as soon as it has room.
func (s *stream) send(a Arrival) {
	if s.behind {
		a = Arrival{Resync: true}
	}
	select {
	case s.ch <- a:
		s.behind = false
	default:
		s.behind = true
	}
}
