package retention_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// whereFound lists every column of every table in the database that holds s: each text and
// jsonb column (as its text), and each bytea column (as bytes), whatever comms put there.
func whereFound(t *testing.T, s *stacktest.Stack, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Pool.Query(ctx, `
		SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns c
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
		  AND data_type IN ('text', 'jsonb', 'json', 'bytea', 'character varying', 'ARRAY')
		  AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema
		              AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE')`)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ schema, table, column, typ string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.schema, &c.table, &c.column, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if rows.Err() != nil || len(cols) < 100 {
		t.Fatalf("columns: %d, %v", len(cols), rows.Err())
	}
	var found []string
	for _, c := range cols {
		expr := fmt.Sprintf("%q::text", c.column)
		if c.typ == "bytea" {
			expr = fmt.Sprintf("encode(%q, 'escape')", c.column)
		}
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %q.%q WHERE strpos(lower(%s), lower($1)) > 0`, c.schema, c.table, expr)
		if err := s.Pool.QueryRow(ctx, q, needle).Scan(&n); err != nil {
			t.Fatalf("%s.%s: %v", c.table, c.column, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s.%s (%d rows)", c.table, c.column, n))
		}
	}
	return found
}

// A person's address, seeded across every table that can hold it (messages sent, delivered by a
// callback, dead-lettered, scheduled, with the address in metadata; their events, callbacks, a
// callback that matched nothing, dead letters, webhook deliveries, a suppression), is found
// nowhere in the database once the erasure is done: not in any text, jsonb or bytea column.
// Another person's history is untouched, the usage export still counts the erased messages, the
// opt-out still holds, and the tenant hears comms.recipient.erased.
func TestErasureLeavesTheAddressNowhere(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	t.Cleanup(tw.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond, RetryInitial: 50 * time.Millisecond,
		RetryMax: 200 * time.Millisecond, BreakerThreshold: 100, BreakerCooldown: time.Hour})
	s.StartDeliverer(webhooks.Config{})
	hook := s.StartWebhook()
	ctx := context.Background()
	tn, err := s.Store.CreateTenant(ctx, domain.NewTenant{Name: "erasing", AllowSystemFallback: false})
	if err != nil {
		t.Fatal(err)
	}
	tid := tn.ID
	_, key, err := s.Store.CreateAPIKey(ctx, domain.KindTenant, tid, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE communication.tenants SET max_attempts = 2 WHERE id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	// The tenant's webhook endpoint, which answers with what it was sent (the attempts keep it).
	var mu sync.Mutex
	var delivered []event.Event
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev event.Event
		if json.Unmarshal(b, &ev) == nil {
			mu.Lock()
			delivered = append(delivered, ev)
			mu.Unlock()
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(rcv.Close)
	if resp := s.Do("POST", "/v1/webhook-endpoints", key, webhooks.Input{URL: rcv.URL}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("create endpoint: %d", resp.StatusCode)
	}
	cfg := s.TwilioConfig(key, tw)

	const victim, bystander = "+14155550123", "+14155550124"
	tw.FailTimes(victim, provider.ProviderUnavailable, 2) // the first message runs out of attempts: a dead letter
	dead := s.Send(key, "", message.Request{Channel: message.SMS, To: victim, Text: "your code is 111111"})
	s.WaitAllFinal(30 * time.Second)
	sent := s.Send(key, "", message.Request{Channel: message.SMS, To: victim, Text: "your code is 222222",
		Metadata: map[string]string{"phone": victim}})
	other := s.Send(key, "", message.Request{Channel: message.SMS, To: bystander, Text: "hello bystander"})
	s.WaitAllFinal(30 * time.Second)
	var scheduled struct{ ID string }
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"channel": "sms", "to": victim, "text": "later",
		"send_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil, &scheduled); resp.StatusCode != 202 {
		t.Fatalf("schedule: %d", resp.StatusCode)
	}
	callback := func(id, to, status, code string) {
		var sid string
		if id != "" {
			m, err := s.Store.GetMessage(ctx, tid, id)
			if err != nil {
				t.Fatal(err)
			}
			sid = m.ProviderMessageID
		} else {
			sid = "SM" + strings.Repeat("0", 32) // matches nothing
		}
		resp, err := fakeprovider.PostTwilioCallback(s.Client, hook.URL+"/webhooks/twilio/"+cfg, tw.AuthToken,
			fakeprovider.TwilioStatus(tw.AccountSID, sid, to, status, code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	callback(sent, victim, "delivered", "")
	callback(other, bystander, "delivered", "")
	callback("", victim, "undelivered", "30003")
	if resp := s.Do("PUT", "/v1/recipients/u_victim", key, map[string]any{"phone": victim, "email": "victim@example.com",
		"data": map[string]any{"mobile": victim, "plan": "pro"}}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("profile: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/suppressions", key, map[string]any{"channel": "sms", "recipient": victim}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("suppress: %d", resp.StatusCode)
	}
	settle(t, s)

	if m, _ := s.Store.GetMessage(ctx, tid, dead); m.Status != message.Failed {
		t.Fatalf("the dead letter's message is %s", m.Status)
	}
	before := whereFound(t, s, victim)
	for _, want := range []string{"recipients.phone", "recipients.data", "message_logs.recipient", "message_logs.metadata", "message_events.payload", "callbacks.recipient",
		"callbacks.payload", "webhook_deliveries.payload", "webhook_attempts.response"} {
		if !strings.Contains(strings.Join(before, " "), want+" ") {
			t.Fatalf("the seed did not put the address in %s: found in %v", want, before)
		}
	}

	// The planner's statistics, which no erasure reaches, sample none of it (migration 0047).
	if _, err := s.Pool.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	if found := testenv.StatisticsHolding(t, s.Pool, strings.TrimPrefix(victim, "+")); len(found) > 0 {
		t.Fatalf("ANALYZE sampled the address in %v", found)
	}

	var er api.Erasure
	if resp := s.Do("POST", "/v1/erasures", key, map[string]any{"recipient": victim}, nil, &er); resp.StatusCode != 202 {
		t.Fatalf("erase: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for er.Status != domain.ErasureDone && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if resp := s.Do("GET", "/v1/erasures/"+er.ID, key, nil, nil, &er); resp.StatusCode != 200 {
			t.Fatalf("get erasure: %d", resp.StatusCode)
		}
	}
	if er.Status != domain.ErasureDone {
		t.Fatalf("erasure still %s after 30 s: %+v", er.Status, er.Counts)
	}
	t.Logf("before: %v; counts %+v", before, er.Counts)
	if c := er.Counts; c.Messages != 3 || c.Canceled != 1 || c.DeadLetters != 1 || c.Suppressions != 1 || c.Callbacks != 2 || c.WebhookDeliveries == 0 {
		t.Fatalf("counts: %+v", c)
	}
	settle(t, s)
	if found := whereFound(t, s, victim); len(found) > 0 {
		t.Fatalf("the erased address is still in %v", found)
	}
	// A late callback for an erased message keeps nothing of its body.
	callback(sent, victim, "undelivered", "30005")
	settle(t, s)
	if found := whereFound(t, s, strings.TrimPrefix(victim, "+")); len(found) > 0 {
		t.Fatalf("the erased number is in %v after a late callback", found)
	}
	if m, _ := s.Store.GetMessage(ctx, tid, sent); len(m.Events) == 0 || m.Events[len(m.Events)-1].Status != message.Undelivered {
		t.Fatalf("the late callback was not applied: %+v", m.Events)
	}
	if found := whereFound(t, s, bystander); !strings.Contains(strings.Join(found, " "), "message_logs.recipient ") {
		t.Fatalf("the bystander's history went too: %v", found)
	}
	var profile api.Recipient
	if resp := s.Do("GET", "/v1/recipients/u_victim", key, nil, nil, &profile); resp.StatusCode != 200 || profile.Phone != "" ||
		profile.Email != "victim@example.com" || !strings.Contains(string(profile.Data), `"plan":"pro"`) {
		t.Fatalf("the profile after erasing its number: %d %+v %s", resp.StatusCode, profile, profile.Data)
	}
	for _, id := range []string{dead, sent, scheduled.ID} {
		m, err := s.Store.GetMessage(ctx, tid, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.To != "" || m.Text != "" {
			t.Fatalf("message %s still shows %q %q", id, m.To, m.Text)
		}
	}
	if m, _ := s.Store.GetMessage(ctx, tid, scheduled.ID); m.Status != message.Canceled {
		t.Fatalf("the scheduled message is %s, not canceled", m.Status)
	}

	// The opt-out holds through the hash, and is found by the address.
	var refused api.Problem
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"channel": "sms", "to": victim, "text": "again"}, nil, &refused); resp.StatusCode != 422 {
		t.Fatalf("a send to the erased, suppressed recipient: %d", resp.StatusCode)
	}
	var sups struct{ Data []api.Suppression }
	if resp := s.Do("GET", "/v1/suppressions?channel=sms&recipient=%2B14155550123", key, nil, nil, &sups); resp.StatusCode != 200 ||
		len(sups.Data) != 1 || sups.Data[0].Recipient != "erased:"+er.RecipientHash {
		t.Fatalf("suppressions by the address: %d %+v", resp.StatusCode, sups.Data)
	}

	// The export still counts every message, without the address.
	month := time.Now().UTC().Format("2006-01")
	resp, body := getRaw(t, s, "/v1/usage/export?format=csv&month="+month, key)
	if resp.StatusCode != 200 || strings.Contains(body, "14155550123") || strings.Count(body, "\n") < 5 {
		t.Fatalf("export: %d\n%s", resp.StatusCode, body)
	}

	// The tenant hears of it, by the hash only.
	deadline = time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		var got *event.Event
		for i := range delivered {
			if delivered[i].Type == event.RecipientErased {
				got = &delivered[i]
			}
		}
		mu.Unlock()
		if got != nil {
			if got.Subject != er.ID || got.Data.RecipientHash != er.RecipientHash || got.Data.Erasure == nil || got.Data.Erasure.Messages != 3 {
				t.Fatalf("comms.recipient.erased: %+v %+v", got, got.Data.Erasure)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no comms.recipient.erased delivered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The tenant lifts it by the address, and may send to the person again.
	if resp := s.Do("DELETE", "/v1/suppressions/sms/%2B14155550123", key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("lift the erased opt-out: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/messages", key, map[string]any{"channel": "sms", "to": victim, "text": "welcome back"}, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("a send once the opt-out is lifted: %d", resp.StatusCode)
	}
}

// settle waits until the callbacks are applied (or given up) and the webhook deliveries made.
func settle(t *testing.T, s *stacktest.Stack) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, quiet := -1, 0
	for time.Now().Before(deadline) {
		var busy bool
		var deliveries int
		if err := s.Pool.QueryRow(context.Background(), `SELECT
			EXISTS (SELECT 1 FROM communication.callbacks WHERE outcome = 'pending' AND tries = 0)
			OR EXISTS (SELECT 1 FROM communication.event_outbox)
			OR EXISTS (SELECT 1 FROM communication.account_events WHERE NOT published)
			OR EXISTS (SELECT 1 FROM communication.webhook_deliveries WHERE status = 'pending'),
			(SELECT count(*) FROM communication.webhook_deliveries)`).Scan(&busy, &deliveries); err != nil {
			t.Fatal(err)
		}
		// The deliverer reads the events from Kafka: settled once no delivery came for 500 ms.
		if !busy && deliveries == last {
			if quiet++; quiet == 25 {
				return
			}
		} else {
			quiet = 0
		}
		last = deliveries
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("callbacks or webhook deliveries still pending after 30 s")
}

func getRaw(t *testing.T, s *stacktest.Stack, path, key string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
