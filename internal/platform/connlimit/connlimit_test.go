package connlimit_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/platform/connlimit"
)

func serve(t *testing.T, max int, h http.Handler) (*connlimit.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := connlimit.Wrap(ln, max, t.Name())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = lim.Serve(srv) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lim, ln.Addr().String()
}

func dial(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

func get(addr string) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Connections held open without a request cannot lock out a client that sends one, and the
// server never holds more than its cap, not even for the moment an idle one is evicted.
func TestIdleConnectionsMakeRoomForARequest(t *testing.T) {
	lim, addr := serve(t, 10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var most atomic.Int64 // the most open at any moment while the 200 come in
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				if n := int64(lim.Open()); n > most.Load() {
					most.Store(n)
				}
			}
		}
	}()
	dial(t, addr, 200)
	for i := range 5 {
		if code, err := get(addr); err != nil || code != 200 {
			t.Fatalf("request %d beside 200 idle connections: %d, %v", i, code, err)
		}
	}
	if n := most.Load(); n > 10 {
		t.Fatalf("%d connections open at once, cap 10", n)
	}
}

// When every connection has a request in progress, a new one is answered at once with a 503.
func TestBusyListenerRefusesQuicklyWith503(t *testing.T) {
	release := make(chan struct{})
	lim, addr := serve(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer close(release)
	for _, c := range dial(t, addr, 3) {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for lim.Open() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the three requests are read: active, not evictable
	c := dial(t, addr, 1)[0]
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, " 503 ") {
		t.Fatalf("over the cap with every connection busy: %q, %v", status, err)
	}
}
