package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// webhookSink is the endpoint -webhooks gives every tenant: it answers 204 to each delivery and
// counts them, so that a run writes the deliveries and attempts of tenants with one endpoint.
type webhookSink struct {
	ln       net.Listener
	srv      *http.Server
	received atomic.Int64
}

func startWebhookSink() (*webhookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook sink: %w", err)
	}
	s := &webhookSink{ln: ln}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *webhookSink) url() string { return "http://" + s.ln.Addr().String() + "/hooks" }

func (s *webhookSink) close() { _ = s.srv.Close() }

// settle waits until no delivery has come for quiet, or for at most limit, and returns how many
// came: deliveries follow a message's events, which follow its final status.
func (s *webhookSink) settle(ctx context.Context, quiet, limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	last, since := s.received.Load(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < quiet && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := s.received.Load(); n != last {
			last, since = n, time.Now()
		}
	}
	return last
}

// addWebhookEndpoint gives the tenant of key an endpoint for every event type at url.
func addWebhookEndpoint(ctx context.Context, c *http.Client, o options, key string) error {
	if err := sendJSON(ctx, c, "POST", o.url+"/v1/webhook-endpoints", key, map[string]any{"url": o.webhookURL}, &struct{}{}); err != nil {
		return fmt.Errorf("add webhook endpoint: %w", err)
	}
	return nil
}
