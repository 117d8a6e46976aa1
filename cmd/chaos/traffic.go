package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// provider is the tenant's webhook provider: it counts the real sends each message gets, which
// is how duplicates are found.
type provider struct {
	mu    sync.Mutex
	calls map[string]int
	first map[string]time.Time // when each message first reached the provider
	srv   *http.Server
	addr  string
	// down makes every send answer 503, as a provider in an outage does.
	down atomic.Bool
}

// startProvider serves the provider on loopback; each send takes latency, so sends are in flight
// when a worker is killed.
func startProvider(ctx context.Context, latency time.Duration) (*provider, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{calls: map[string]int{}, first: map[string]time.Time{}, addr: ln.Addr().String()}
	p.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data struct {
				ID   string `json:"id"`
				Test bool   `json:"test"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if p.down.Load() {
			http.Error(w, "outage (simulated)", http.StatusServiceUnavailable)
			return
		}
		if !body.Data.Test {
			time.Sleep(latency)
			p.mu.Lock()
			p.calls[body.Data.ID]++
			if _, ok := p.first[body.Data.ID]; !ok {
				p.first[body.Data.ID] = time.Now()
			}
			p.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// load sends messages at a steady rate as a careful client does: each with its own
// Idempotency-Key, retried with the same key until it is accepted (202) or 60 s have passed.
type load struct {
	url, key string
	client   *http.Client
	mu       sync.Mutex
	accepted map[string]time.Time // message id → when it was accepted
	gaveUp   atomic.Int64
	retries  atomic.Int64
}

func (l *load) run(ctx context.Context, rate int) {
	var wg sync.WaitGroup
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.send(ctx, fmt.Sprintf("chaos-%d-%d", time.Now().UnixNano(), i))
		}()
	}
}

func (l *load) send(ctx context.Context, idemKey string) {
	body := []byte(`{"channel":"sms","to":"+14155550123","text":"chaos"}`)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", l.url+"/v1/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+l.key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", idemKey)
		resp, err := l.client.Do(req)
		if err == nil {
			var out struct{ ID string }
			_ = json.NewDecoder(resp.Body).Decode(&out)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				l.mu.Lock()
				if _, seen := l.accepted[out.ID]; !seen {
					l.accepted[out.ID] = time.Now()
				}
				l.mu.Unlock()
				return
			}
		}
		l.retries.Add(1)
		time.Sleep(250 * time.Millisecond)
	}
	l.gaveUp.Add(1)
}

// flood runs fn from workers goroutines until ctx ends, and returns how often it ran.
func flood(ctx context.Context, workers int, fn func(i int)) int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += workers {
				fn(i)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return n.Load()
}

// post sends one request and drains the answer, returning its status (0 for a transport error).
func post(ctx context.Context, c *http.Client, url, key, body string) int {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// holdConnections opens n idle connections to addr and keeps them until ctx ends.
func holdConnections(ctx context.Context, addr string, n int) int {
	var conns []net.Conn
	d := net.Dialer{Timeout: 2 * time.Second}
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			continue
		}
		conns = append(conns, c)
	}
	<-ctx.Done()
	for _, c := range conns {
		_ = c.Close()
	}
	return len(conns)
}
