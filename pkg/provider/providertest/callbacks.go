package providertest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// CallbackHarness adapts one provider's delivery callbacks to the suite.
type CallbackHarness struct {
	Config provider.Config // a config whose secrets sign Request's callbacks
	Env    provider.Env    // what the registration's Callbacks are built from
	// Request returns a callback as the provider sends it, signed for cfg, reporting status for
	// the provider's message pmid.
	Request func(t *testing.T, cfg provider.Config, pmid string, status message.Status) provider.CallbackRequest
	// Statuses are the normalized statuses this provider reports.
	Statuses []message.Status
	// OtherSecrets returns cfg with other signing secrets (another account's).
	OtherSecrets func(cfg provider.Config) provider.Config
}

// failures are the statuses that must carry a normalized error code.
var failures = map[message.Status]bool{message.Failed: true, message.Undelivered: true, message.Bounced: true}

// RunCallbacks holds the callbacks of h's provider to the contract: each status the provider
// reports is normalized with the config, the provider's message id, a stable event key and the
// payload; a callback signed with other secrets, or altered after signing, is refused as
// ErrUnverified before anything is parsed.
func RunCallbacks(t *testing.T, h CallbackHarness) {
	reg := registration(t, h.Config.Type)
	if reg.Callbacks == nil {
		t.Fatalf("%s registers no Callbacks", reg.Type)
	}
	cbs, err := reg.Callbacks(h.Env)
	if err != nil {
		t.Fatalf("build %s callbacks: %v", reg.Type, err)
	}
	ctx := context.Background()
	for i, st := range h.Statuses {
		t.Run("normalizes "+string(st), func(t *testing.T) {
			pmid := "pm-conformance-" + string(rune('a'+i))
			events, err := cbs.Receive(ctx, h.Request(t, h.Config, pmid, st))
			if err != nil || len(events) != 1 {
				t.Fatalf("events %+v, err %v: want one event", events, err)
			}
			ev := events[0]
			if ev.Status != st || ev.ProviderMessageID != pmid || ev.ProviderConfigID != h.Config.ID || ev.ProviderType != reg.Type {
				t.Fatalf("event %+v: want status %s for %s from config %s", ev, st, pmid, h.Config.ID)
			}
			if ev.OccurredAt.IsZero() || len(ev.Payload) == 0 {
				t.Fatalf("event %+v has no time or payload", ev)
			}
			if failures[st] && ev.ErrorCode == "" {
				t.Fatalf("a %s event without a normalized error code: %+v", st, ev)
			}
			CheckEvent(t, ev, nil)
		})
	}
	t.Run("a provider's retry has the same event key, another event another", func(t *testing.T) {
		req := h.Request(t, h.Config, "pm-retry", h.Statuses[0])
		first := receiveOne(t, cbs, req)
		again := receiveOne(t, cbs, req)
		other := receiveOne(t, cbs, h.Request(t, h.Config, "pm-retry", h.Statuses[len(h.Statuses)-1]))
		if first.EventKey == "" || first.EventKey != again.EventKey {
			t.Fatalf("keys %q and %q for one event", first.EventKey, again.EventKey)
		}
		if len(h.Statuses) > 1 && other.EventKey == first.EventKey {
			t.Fatalf("two events share the key %q", first.EventKey)
		}
	})
	t.Run("signed with another account's secret is unverified", func(t *testing.T) {
		req := h.Request(t, h.Config, "pm-forged", h.Statuses[0])
		req.Config = h.OtherSecrets(h.Config)
		assertUnverified(t, cbs, req)
	})
	t.Run("altered after signing is unverified", func(t *testing.T) {
		req := h.Request(t, h.Config, "pm-original", h.Statuses[0])
		if !bytes.Contains(req.Body, []byte("pm-original")) {
			t.Fatalf("the body does not name the message: %s", req.Body)
		}
		req.Body = bytes.ReplaceAll(req.Body, []byte("pm-original"), []byte("pm-substitute"))
		assertUnverified(t, cbs, req)
	})
}

func receiveOne(t *testing.T, cbs provider.Callbacks, req provider.CallbackRequest) provider.Event {
	t.Helper()
	events, err := cbs.Receive(context.Background(), req)
	if err != nil || len(events) != 1 {
		t.Fatalf("events %+v, err %v: want one event", events, err)
	}
	return events[0]
}

func assertUnverified(t *testing.T, cbs provider.Callbacks, req provider.CallbackRequest) {
	t.Helper()
	events, err := cbs.Receive(context.Background(), req)
	if !errors.Is(err, provider.ErrUnverified) || len(events) != 0 {
		t.Fatalf("events %+v, err %v: want ErrUnverified and nothing", events, err)
	}
}

// CheckEvent holds a parser's answer to what the receiver needs: a parse failure wraps
// ErrMalformed, and an event has a key and a provider message id the inbox can store. Fuzz
// targets call it on every input.
func CheckEvent(t *testing.T, ev provider.Event, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, provider.ErrMalformed) {
			t.Fatalf("parse error not ErrMalformed: %v", err)
		}
		return
	}
	if ev.EventKey == "" || ev.ProviderMessageID == "" || len(ev.ProviderMessageID) > 128 || len(ev.Payload) == 0 {
		t.Fatalf("accepted a callback the inbox cannot key: key %q pmid %q", ev.EventKey, ev.ProviderMessageID)
	}
}
