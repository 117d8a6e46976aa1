package store_test

import (
	"context"
	"fmt"
	"sync"
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

// A provider retrying while its first try is still being stored (the receiver was slow to answer)
// has the callback stored once: receivers storing the same callback at once wait for each other.
func TestConcurrentRetriesOfACallbackAreStoredOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for round := range 20 {
		key := fmt.Sprintf("k%d", round)
		fresh := make(chan bool, 8)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// each with other callbacks around it, in another order
				batch := []provider.Event{callbackFor("prv_c", "SMx", fmt.Sprintf("other-%d-%d", round, i), message.Sent),
					callbackFor("prv_c", "SMx", key, message.Delivered)}
				if i%2 == 1 {
					batch[0], batch[1] = batch[1], batch[0]
				}
				got, err := s.InsertCallbacks(ctx, batch)
				if err != nil {
					t.Error(err)
					return
				}
				fresh <- got[0] && batch[0].EventKey == key || got[1] && batch[1].EventKey == key
			}()
		}
		wg.Wait()
		close(fresh)
		n := 0
		for f := range fresh {
			if f {
				n++
			}
		}
		var stored int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM communication.callbacks WHERE event_key = $1`, key).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if n != 1 || stored != 1 {
			t.Fatalf("round %d: %d receivers stored it as new, %d rows; want 1 and 1", round, n, stored)
		}
	}
}

// A provider's retry that comes in the week after its first try (across a Monday) is still
// recognised; one from a fortnight before is stored as new.
func TestARetryAcrossAMondayIsRecognised(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CreatePartitions(ctx, time.Now().AddDate(0, 0, -21), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, ago string }{{"last-week", "168 hours"}, {"a-fortnight-ago", "336 hours"}} {
		if _, err := s.Pool().Exec(ctx, `
			INSERT INTO communication.callbacks (provider_config_id, provider_type, event_key, provider_message_id, status, occurred_at, payload,
			                                     received_at, received_week)
			VALUES ('prv_w', 'twilio', $1, 'SMw', 'delivered', now(), '{}', now() - $2::interval, date_trunc('week', now() - $2::interval, 'UTC'))`,
			c.key, c.ago); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := s.InsertCallbacks(ctx, []provider.Event{callbackFor("prv_w", "SMw", "last-week", message.Delivered),
		callbackFor("prv_w", "SMw", "a-fortnight-ago", message.Delivered)})
	if err != nil || fresh[0] || !fresh[1] {
		t.Fatalf("fresh %v (%v): want last week's retry recognised and a fortnight's stored", fresh, err)
	}
}
