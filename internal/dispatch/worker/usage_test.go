package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

type usageAnswer struct {
	Totals api.Counters   `json:"totals"`
	Rows   []api.UsageRow `json:"rows"`
}

// Usage is a recount of the messages and their timelines, whatever happened to them: a retry, a
// dead letter replayed, duplicated and out-of-order callbacks, Twilio's price fetched after the
// send replacing a unit-price estimate, a configured unit price, a two-segment SMS. Another tenant's usage is not in it.
func TestUsageEqualsARecountOfMessages(t *testing.T) {
	t.Parallel()
	tw, rs := fakeprovider.NewTwilio(), fakeprovider.NewResend()
	tw.PriceLater = true // as Twilio does: no price in the send's answer, fetched later
	t.Cleanup(tw.Close)
	t.Cleanup(rs.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL, ResendBaseURL: rs.URL}})
	cfg := retrying
	cfg.BreakerCooldown = 50 * time.Millisecond
	s.StartWorker(cfg)
	hook := s.StartWebhook()
	tid, key := ownOnly(t, s)
	_, otherKey := ownOnly(t, s)
	ctx := context.Background()
	if _, err := s.Pool.Exec(ctx, `UPDATE communication.tenants SET max_attempts = 2 WHERE id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	twID := addTwilio(t, s, key, tw, "tw", "+14155550001", 1).ID
	// An estimate until Twilio's price is fetched: usage must end with the price, not both.
	if resp := s.Do("PATCH", "/v1/providers/"+twID, key, map[string]any{"unit_price": map[string]any{"amount": "0.005", "currency": "USD"}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("set the unit price: %d", resp.StatusCode)
	}
	addTwilio(t, s, otherKey, tw, "tw", "+14155550002", 1)
	var email struct{ ID string }
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{"type": "resend", "name": "rs", "channel": "email", "test_recipient": "me@acme.example",
		"credentials": map[string]any{"api_key": rs.APIKey}, "sender": map[string]any{"from": "a@acme.example"},
		"unit_price": map[string]any{"amount": "0.0004", "currency": "EUR"}}, nil, &email); resp.StatusCode != 201 {
		t.Fatalf("create resend config: %d", resp.StatusCode)
	}

	tw.FailTimes("+14155550011", provider.ProviderUnavailable, 1) // retried, then sent
	tw.FailTimes("+14155550012", provider.ProviderUnavailable, 2) // out of attempts: a dead letter
	to := []string{"+14155550010", "+14155550011", "+14155550012", "+14155550013"}
	ids := map[string]string{}
	for _, r := range to {
		ids[r] = s.Send(key, "", message.Request{Channel: message.SMS, To: r, Text: "code 1234"})
	}
	long := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550014", Text: strings.Repeat("long text ", 20)}) // 2 segments
	s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "hi", Text: "hello", Category: message.Marketing})
	s.Send(otherKey, "", sms("theirs"))
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, ids["+14155550012"]); m.Status != message.Failed {
		t.Fatalf("the dead letter is %s", m.Status)
	}
	if resp := s.Do("POST", "/admin/dlq/replay", s.AdminKey, map[string]any{"filter": map[string]any{"tenant_id": tid}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	s.WaitAllFinal(30 * time.Second)

	// Callbacks: each twice, some in reverse order, one undelivered.
	endpoint := hook.URL + "/webhooks/twilio/" + twID
	cb := func(id, status, code string) {
		m := getMessage(t, s, tid, id)
		resp, err := fakeprovider.PostTwilioCallback(s.Client, endpoint, tw.AuthToken, fakeprovider.TwilioStatus(tw.AccountSID, m.ProviderMessageID, m.To, status, code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for range 2 {
		cb(ids["+14155550010"], "delivered", "")
		cb(ids["+14155550010"], "sent", "")
		cb(ids["+14155550011"], "undelivered", "30003")
		cb(long, "delivered", "")
	}
	deadline := time.Now().Add(20 * time.Second)
	for (pendingCallbacks(t, s) > 0 || pending(t, s, "price_checks") > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	var want api.Counters
	var usd, eur string
	if err := s.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1),
		       (SELECT count(*) FROM communication.message_events WHERE tenant_id = $1 AND source = 'internal' AND status IN ('sent', 'failed', 'retrying')),
		       (SELECT count(*) FROM communication.message_events WHERE tenant_id = $1 AND source = 'internal' AND status = 'sent'),
		       (SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1 AND delivered_at IS NOT NULL),
		       (SELECT count(*) FROM communication.message_events WHERE tenant_id = $1 AND source = 'internal' AND status = 'failed')
		     + (SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1 AND status IN ('failed', 'undelivered') AND sent_at IS NOT NULL),
		       (SELECT coalesce(sum(coalesce(sms_segments, 1)), 0) FROM communication.message_logs WHERE tenant_id = $1 AND channel = 'sms' AND sent_at IS NOT NULL),
		       (SELECT sum(abs(cost::numeric))::text FROM communication.message_logs WHERE tenant_id = $1 AND cost_currency = 'USD' AND cost_source = 'provider'),
		       (SELECT sum(abs(cost::numeric))::text FROM communication.message_logs WHERE tenant_id = $1 AND cost_currency = 'EUR' AND cost_source = 'unit_price')`,
		tid).Scan(&want.Accepted, &want.Attempts, &want.Sent, &want.Delivered, &want.Failed, &want.Segments, &usd, &eur); err != nil {
		t.Fatal(err)
	}
	// The scenario's own arithmetic, so that the recount cannot agree with a wrong rollup by accident.
	if want.Accepted != 6 || want.Sent != 6 || want.Attempts != 9 || want.Delivered != 2 || want.Failed != 2 || want.Segments != 6 {
		t.Fatalf("recount: %+v", want)
	}
	var got usageAnswer
	if resp := s.Do("GET", "/v1/usage?group_by=channel,provider", key, nil, nil, &got); resp.StatusCode != 200 {
		t.Fatalf("usage: %d", resp.StatusCode)
	}
	tot := got.Totals
	if tot.Accepted != want.Accepted || tot.Attempts != want.Attempts || tot.Sent != want.Sent || tot.Delivered != want.Delivered ||
		tot.Failed != want.Failed || tot.Segments != want.Segments || tot.Bounced != 0 {
		t.Fatalf("usage totals %+v, recount %+v", tot, want)
	}
	var estimated int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1 AND channel = 'sms' AND sent_at IS NOT NULL AND cost_source <> 'provider'`, tid).Scan(&estimated); err != nil || estimated != 0 {
		t.Fatalf("%d sent SMS without Twilio's price (%v)", estimated, err)
	}
	if cost := costs(tot.Cost); len(cost) != 2 || cost["USD"] != usd || cost["EUR"] != eur || eur != "0.0004" || usd != "0.03950" {
		t.Fatalf("cost %v, recount USD %s EUR %s", tot.Cost, usd, eur)
	}
	var sum int64
	for _, r := range got.Rows {
		sum += r.Sent
		if r.Channel == "email" && r.Provider == email.ID && r.Sent != 1 {
			t.Fatalf("email row: %+v", r)
		}
	}
	if sum != tot.Sent {
		t.Fatalf("rows sum to %d sent, totals say %d", sum, tot.Sent)
	}
	var theirs usageAnswer
	s.Do("GET", "/v1/usage", otherKey, nil, nil, &theirs)
	if theirs.Totals.Accepted != 1 {
		t.Fatalf("the other tenant's usage: %+v", theirs.Totals)
	}
}

func costs(ms []api.Money) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Currency] = m.Amount
	}
	return out
}

func pendingCallbacks(t *testing.T, s *stacktest.Stack) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.callbacks WHERE outcome = 'pending'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func pending(t *testing.T, s *stacktest.Stack, table string) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.`+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
