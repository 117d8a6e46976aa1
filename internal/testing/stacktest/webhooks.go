package stacktest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/callbacks/receiver"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/runner"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/apispec"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
)

// Deliverer is a running webhook Deliverer.
type Deliverer struct {
	*webhooks.Deliverer
	stop context.CancelCauseFunc
	done chan struct{}
}

// Kill stops the Deliverer as a killed process would: nothing more is recorded or committed.
func (d *Deliverer) Kill() {
	d.stop(queue.ErrKilled)
	<-d.done
}

// StartDeliverer runs a webhook Deliverer reading comms.events in the stack's webhooks group,
// dialling loopback (which production refuses), with its cache told of endpoint changes.
func (s *Stack) StartDeliverer(cfg webhooks.Config) *Deliverer {
	s.tb.Helper()
	cfg.Brokers, cfg.Group = s.Brokers, s.groupID+"-webhooks"
	if cfg.Dial == nil {
		cfg.Dial = netguard.DialFunc(5*time.Second, true)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 20 * time.Millisecond
	}
	d := webhooks.New(cfg, s.Store, s.Ring, s.Log)
	ctx, cancel := context.WithCancelCause(context.Background())
	rd := &Deliverer{Deliverer: d, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(rd.done)
		_ = runner.Run(ctx, s.Log, runner.Stage{{Name: "webhook deliverer", Run: d.Run}},
			runner.Stage{runner.Loop("endpoint invalidations", func(ctx context.Context) {
				invalidate.ListenEndpoints(ctx, s.rdb, s.prefix, s.Log, d.Changed)
			})})
	}()
	s.tb.Cleanup(func() {
		cancel(nil)
		select {
		case <-rd.done:
		case <-time.After(30 * time.Second):
		}
	})
	return rd
}

// Webhook is a running callback receiver with its applier.
type Webhook struct {
	URL    string
	Server *receiver.Server
	kill   func()
}

// Kill stops the receiver and its applier as a killed process would: connections cut, requests
// in flight unanswered, the applier's transaction abandoned.
func (w *Webhook) Kill() { w.kill() }

// StartWebhook serves the callback receiver over real HTTP (its own URL is the public URL that
// Twilio signs) and runs an applier polling every Options.ApplyInterval. SES callbacks verify
// against the SNS of Options.Env (SNSHostPattern, SNSClient, SNSPort).
func (s *Stack) StartWebhook() *Webhook {
	s.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tb.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	srv, err := receiver.New(s.Pool, s.Log, receiver.Options{Registry: s.Registry, PublicURL: url, ConfigTTL: time.Second})
	if err != nil {
		s.tb.Fatal(err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: tracing.Handler(app.WebhookHandler(srv, s.Store, s.Ring, s.Log), "webhook"), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: app.MaxHeaderBytes}}
	hs.Start()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	go func() {
		defer wg.Done()
		apply.New(apply.Config{Interval: s.applyEvery, Backoff: func(int) time.Duration { return 50 * time.Millisecond }}, s.Store, s.Log).Run(ctx)
	}()
	var once sync.Once
	kill := func() {
		once.Do(func() {
			stop()
			hs.CloseClientConnections()
			hs.Close()
			wg.Wait()
		})
	}
	s.tb.Cleanup(kill)
	return &Webhook{URL: url, Server: srv, kill: kill}
}

// EventSink adds a webhook endpoint for the tenant of key that keeps every event it is sent (a
// deliverer must be running: StartDeliverer), and returns what it received so far of type typ
// (every type when typ is "").
func (s *Stack) EventSink(key, typ string) func() []event.Event {
	s.tb.Helper()
	var mu sync.Mutex
	var got []event.Event
	spec, err := apispec.Load()
	if err != nil {
		s.tb.Fatal(err)
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Every delivery a test receives holds openapi.json's webhooks section to the code.
		if err := spec.CheckWebhook(r.Header, body); err != nil {
			s.tb.Errorf("openapi.json: %v", err)
		}
		var ev event.Event
		if json.Unmarshal(body, &ev) == nil && (typ == "" || ev.Type == typ) {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	}))
	s.tb.Cleanup(rcv.Close)
	if resp := s.Do("POST", "/v1/webhook-endpoints", key, webhooks.Input{URL: rcv.URL}, nil, nil); resp.StatusCode != http.StatusCreated {
		s.tb.Fatalf("create the event sink's endpoint: %d", resp.StatusCode)
	}
	return func() []event.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]event.Event(nil), got...)
	}
}

// WaitEvents waits up to d for sink to hold at least n events, and returns them.
func (s *Stack) WaitEvents(sink func() []event.Event, n int, d time.Duration) []event.Event {
	s.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		got := sink()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%d events delivered in %s, want %d", len(got), d, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
