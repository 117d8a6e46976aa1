// Package connlimit caps the connections an HTTP server holds open, so that a flood of clients
// cannot take the process's file descriptors from what it needs to do its work (PostgreSQL,
// Redis, Kafka and provider connections).
//
// At the cap, a new connection takes the place of the connection that has waited longest without
// a request in progress (one that has sent nothing yet, or a keep-alive connection between
// requests): held-open idle connections cannot lock out a client that wants to send a request.
// When every connection has a request in progress, the new one is answered at once with a 503
// and closed.
package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	openConns = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "comms_http_connections", Help: "HTTP connections open, by listener.",
	}, []string{"listener"})
	shedConns = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_http_connections_shed_total",
		Help: "Connections closed at the listener's cap: idle ones evicted for a newer one, or new ones refused with a 503 while every open one was busy.",
	}, []string{"listener", "how"})
)

// overCap is the answer to a connection refused at the cap: complete, so a client that reads it
// sees why, and short, so writing it never blocks the accept loop.
var overCap = func() []byte {
	body := `{"type":"https://github.com/logicspike/comms/blob/main/docs/errors.md#unavailable","title":"Service unavailable","status":503,"detail":"too many open connections; retry shortly"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Listener is a net.Listener that holds at most max connections open. Set the server's
// ConnState to the listener's ConnState, so it knows which connections are between requests.
type Listener struct {
	net.Listener
	max    int
	name   string
	mu     sync.Mutex
	open   int
	idle   list.List // *conn without a request in progress, longest waiting first
	gauge  prometheus.Gauge
	evicts prometheus.Counter
	refuse prometheus.Counter
}

// Wrap caps ln at max open connections; name labels the metrics.
func Wrap(ln net.Listener, max int, name string) *Listener {
	return &Listener{Listener: ln, max: max, name: name, gauge: openConns.WithLabelValues(name),
		evicts: shedConns.WithLabelValues(name, "evicted"), refuse: shedConns.WithLabelValues(name, "refused")}
}

// Serve configures srv to report connection states to l, and serves on l.
func (l *Listener) Serve(srv *http.Server) error {
	srv.ConnState = l.ConnState
	return srv.Serve(l)
}

// Accept returns the next connection, making room for it at the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		var victim *conn
		if l.open >= l.max {
			if e := l.idle.Front(); e != nil {
				// Evicted here, under the lock, so the count never passes the cap, even for the
				// moment until its socket is closed below.
				victim = e.Value.(*conn)
				l.idle.Remove(e)
				victim.elem, victim.closed = nil, true
				l.open--
			}
		}
		if l.open >= l.max && victim == nil {
			l.mu.Unlock()
			l.refuse.Inc()
			_ = nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			_, _ = nc.Write(overCap)
			_ = nc.Close()
			continue
		}
		l.open++
		c := &conn{Conn: nc, l: l}
		c.elem = l.idle.PushBack(c)
		l.mu.Unlock()
		l.gauge.Inc()
		if victim != nil {
			l.gauge.Dec()
			l.evicts.Inc()
			_ = victim.Conn.Close()
		}
		return c, nil
	}
}

// ConnState tracks which connections may be evicted: new and idle ones, not active ones.
func (l *Listener) ConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
	if (state == http.StateNew || state == http.StateIdle) && !c.closed {
		c.elem = l.idle.PushBack(c)
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

type conn struct {
	net.Conn
	l      *Listener
	elem   *list.Element // in l.idle; guarded by l.mu
	closed bool          // guarded by l.mu
}

func (c *conn) Close() error {
	l := c.l
	l.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.elem != nil {
		l.idle.Remove(c.elem)
		c.elem = nil
	}
	if first {
		l.open--
	}
	l.mu.Unlock()
	if first {
		l.gauge.Dec()
	}
	return c.Conn.Close()
}
