package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func callbackFor(cfg, pmid, key string, st message.Status) provider.Event {
	return provider.Event{ProviderConfigID: cfg, ProviderType: "twilio", EventKey: key, ProviderMessageID: pmid, Status: st,
		OccurredAt: time.Now().UTC(), Payload: []byte(`{}`)}
}

// Provider retries of one event are stored once, even within one batch; text PostgreSQL cannot
// hold (NUL, invalid UTF-8, the JSON escape \u0000) is made storable rather than failing the
// batch forever.
func TestInsertCallbacksDeduplicatesAndSanitizes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	odd := callbackFor("prv_s", "SM\x00\xff9", "k\x001", message.Delivered)
	odd.Reason, odd.Payload = "bad\x00byte \xfe", []byte(`{"a":"\u0000","b":"`+"\xff"+`"}`)
	fresh, err := s.InsertCallbacks(ctx, []provider.Event{odd, odd, callbackFor("prv_s", "SM2", "k2", message.Delivered)})
	if err != nil {
		t.Fatal(err)
	}
	if !fresh[0] || fresh[1] || !fresh[2] {
		t.Fatalf("fresh = %v", fresh)
	}
	again, err := s.InsertCallbacks(ctx, []provider.Event{odd})
	if err != nil || again[0] {
		t.Fatalf("a stored event was stored again: %v %v", again, err)
	}
}
