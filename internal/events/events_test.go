package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
)

// Every published change of every message reaches comms.events as one CloudEvent (duplicates
// carry the same id), in the order of the message's changes, across a worker killed mid-run.
func TestEveryChangeIsPublishedOnceInOrderAcrossACrash(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Partitions: 4, SandboxLatencyMS: 5})
	w := s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tenant, key := s.Tenant()

	const n = 300
	ids := map[string]bool{}
	for i := range n {
		ids[s.Send(key, "", message.Request{Channel: message.SMS, To: fmt.Sprintf("+1415555%04d", i), Text: "hello"})] = true
	}
	var later, canceled struct{ ID string }
	s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155559998", Text: "later", SendAt: ptr(time.Now().Add(time.Second))}, nil, &later)
	s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155559999", Text: "never", SendAt: ptr(time.Now().Add(time.Hour))}, nil, &canceled)
	s.Do("POST", "/v1/messages/"+canceled.ID+"/cancel", key, nil, nil, nil)
	for s.Recorder.Total() < n/3 {
		time.Sleep(5 * time.Millisecond)
	}
	w.Kill() // mid-run: some events are written and not yet published, some published and not yet removed
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.WaitAllFinal(60 * time.Second)

	// What the database says happened, in order, per message.
	want := map[string][]string{}
	rows, err := s.Pool.Query(context.Background(), `
		SELECT message_id, id, status, source FROM communication.message_events WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var msg, status, source string
		var id int64
		if err := rows.Scan(&msg, &id, &status, &source); err != nil {
			t.Fatal(err)
		}
		if typ, ok := event.MessageType(status, source); ok {
			want[msg] = append(want[msg], event.ID(id)+" "+typ)
			total++
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	// What comms.events carries, deduplicated by id as a consumer does.
	got := map[string][]string{}
	seen := map[string]bool{}
	r := queue.NewGroupReader(s.Brokers, "events-test", queue.TopicEvents)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < total {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(seen), total, err)
		}
		var ev event.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("event %s: %v", m.Value, err)
		}
		if ev.SpecVersion != "1.0" || ev.Source != "/tenants/"+tenant || ev.Subject != ev.Data.MessageID || ev.Data.TenantID != tenant ||
			string(m.Key) != tenant || ev.Data.Channel != "sms" || ev.Data.Recipient == "" || ev.Time.IsZero() || ev.DataContentType != "application/json" {
			t.Fatalf("event does not follow the schema: key %s %+v", m.Key, ev)
		}
		if ev.Type == event.Sent && (ev.Data.Provider == nil || ev.Data.Provider.Type != "sandbox" || ev.Data.Attempt < 1) {
			t.Errorf("sent event without its provider and attempt: %+v", ev.Data)
		}
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		got[ev.Subject] = append(got[ev.Subject], ev.ID+" "+ev.Type)
	}
	for msg, w := range want {
		if fmt.Sprint(got[msg]) != fmt.Sprint(w) {
			t.Errorf("message %s: published %v, want %v", msg, got[msg], w)
		}
	}
	for id := range ids {
		if len(want[id]) != 2 || want[id][1][len(want[id][1])-len(event.Sent):] != event.Sent {
			t.Errorf("message %s: events %v, want accepted then sent exactly once", id, want[id])
		}
	}
	if fmt.Sprint(types(want[later.ID])) != fmt.Sprint([]string{event.Scheduled, event.Accepted, event.Sent}) ||
		fmt.Sprint(types(want[canceled.ID])) != fmt.Sprint([]string{event.Scheduled, event.Canceled}) {
		t.Errorf("scheduled %v, canceled %v", want[later.ID], want[canceled.ID])
	}
}

func types(evs []string) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		var id string
		_, _ = fmt.Sscanf(e, "%s %s", &id, &out[i])
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// A tenant's provider config becoming auth_failed or circuit_open, and recovering, is published
// once per change, in order, from the transaction that made it: a change rolled back publishes
// nothing, and the half-open probes in between are not news.
func TestProviderHealthChangesArePublished(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{})
	tenant, _ := s.Tenant()
	ctx := context.Background()
	const cfg = "prv_health_events"
	if _, err := s.Pool.Exec(ctx, `INSERT INTO communication.provider_configs (id, tenant_id, type, name, channel)
		VALUES ($1, $2, 'twilio', 'main', 'sms')`, cfg, tenant); err != nil {
		t.Fatal(err)
	}
	set := func(health, reason string) {
		if err := s.Store.SetProviderHealth(ctx, cfg, health, reason); err != nil {
			t.Fatal(err)
		}
	}
	set("circuit_open", "5 failures in a row")
	set("half_open", "")
	set("circuit_open", "the probe failed")
	set("healthy", "")
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE communication.provider_configs SET health = 'auth_failed' WHERE id = $1`, cfg); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	set("auth_failed", "Twilio: authentication failed (20003) — update your credentials")
	set("healthy", "")

	want := []string{"circuit_open circuit_open 5 failures in a row", "recovered healthy ",
		"auth_failed auth_failed Twilio: authentication failed (20003) — update your credentials", "recovered healthy "}
	r := queue.NewGroupReader(s.Brokers, "events-test", queue.TopicEvents)
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got []string
	seen := map[string]bool{}
	for len(got) < len(want) {
		m, err := r.Fetch(rctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		var ev event.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if ev.Subject != cfg || ev.Data.TenantID != tenant || string(m.Key) != tenant || ev.Data.Provider == nil ||
			ev.Data.Provider.Type != "twilio" || ev.Data.Provider.ConfigID != cfg {
			t.Fatalf("provider event %+v", ev)
		}
		reason := ""
		if ev.Data.Error != nil {
			reason = ev.Data.Error.Message
		}
		got = append(got, fmt.Sprintf("%s %s %s", ev.Type[len("comms.provider."):], ev.Data.Status, reason))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published\n%q\nwant\n%q", got, want)
	}
}
