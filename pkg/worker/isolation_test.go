package worker_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider/webhook"
)

// hangingEndpoint answers Save & Test, then holds every real send until released, counting how
// many it holds at once.
type hangingEndpoint struct {
	*httptest.Server
	release  chan struct{}
	mu       sync.Mutex
	now, max int
}

func newHangingEndpoint() *hangingEndpoint {
	h := &hangingEndpoint{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		if !p.Data.Test {
			h.mu.Lock()
			h.now++
			h.max = max(h.max, h.now)
			h.mu.Unlock()
			select {
			case <-h.release:
			case <-r.Context().Done():
			}
			h.mu.Lock()
			h.now--
			h.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return h
}

// Tenant B's provider hangs on every send while B keeps sending; tenant A, on another provider in
// the same worker and the same partition, is not held up: B's sends take at most the bulkhead's
// share of the worker's in-flight slots.
func TestHangingProviderCannotTakeEveryInFlightSlot(t *testing.T) {
	t.Parallel()
	hang := newHangingEndpoint()
	defer hang.Close()
	defer close(hang.release)
	s := stacktest.Start(t, stacktest.Options{Partitions: 1})
	cfg := retrying
	cfg.InFlight, cfg.PerConfigInFlight, cfg.AttemptTimeout = 8, 4, 20*time.Second
	cfg.RetryInitial = time.Second
	s.StartWorker(cfg)

	_, keyB := ownOnly(t, s)
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("b", 32)))
	if resp := s.Do("POST", "/v1/providers", keyB, map[string]any{"type": "webhook", "name": "slow", "channel": "sms",
		"test_recipient": "+14155550199", "credentials": map[string]any{"url": hang.URL, "secret": secret}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("B's provider: %d", resp.StatusCode)
	}
	tidA, keyA := s.Tenant() // A uses the system default (the sandbox)
	for range 30 {
		s.Send(keyB, "", sms("b"))
	}
	time.Sleep(200 * time.Millisecond) // B's sends are in and hanging
	var idsA []string
	for range 20 {
		idsA = append(idsA, s.Send(keyA, "", sms("a")))
	}
	deadline := time.Now().Add(15 * time.Second) // well inside B's 20 s hang
	for _, id := range idsA {
		for getMessage(t, s, tidA, id).Status != message.Sent {
			if time.Now().After(deadline) {
				t.Fatalf("tenant A's message %s is stuck behind tenant B's hanging provider", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hang.mu.Lock()
	held := hang.max
	hang.mu.Unlock()
	if held > cfg.PerConfigInFlight {
		t.Fatalf("the hanging provider held %d sends at once; the bulkhead allows %d", held, cfg.PerConfigInFlight)
	}
}
