package receiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// waitFor polls cond until it holds, failing after a generous deadline (the applier polls every
// 20ms; the deadline only bounds a broken run).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createProvider(t *testing.T, s *stacktest.Stack, key string, in map[string]any) api.Provider {
	t.Helper()
	var raw json.RawMessage
	resp := s.Do("POST", "/v1/providers", key, in, nil, &raw)
	var p api.Provider
	if resp.StatusCode != 201 || json.Unmarshal(raw, &p) != nil {
		t.Fatalf("create provider: %d %s", resp.StatusCode, raw)
	}
	return p
}

func getMessage(s *stacktest.Stack, key, id string) message.Message {
	var m message.Message
	s.Do("GET", "/v1/messages/"+id, key, nil, nil, &m)
	return m
}

// analytics returns both analytics answers for the last day, as JSON, for before/after checks.
func analytics(t *testing.T, s *stacktest.Stack, key, channel string) (ts struct {
	Buckets []api.Bucket
	Totals  api.Bucket
}, errs []api.ProviderErrorCount, raw string) {
	t.Helper()
	from := time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(24 * time.Hour).Format(time.RFC3339)
	q := "?channel=" + channel + "&from=" + from + "&to=" + to
	if resp := s.Do("GET", "/v1/analytics/timeseries"+q+"&interval=hour", key, nil, nil, &ts); resp.StatusCode != 200 {
		t.Fatalf("timeseries: %d", resp.StatusCode)
	}
	var pe struct{ Errors []api.ProviderErrorCount }
	if resp := s.Do("GET", "/v1/analytics/provider-errors"+q, key, nil, nil, &pe); resp.StatusCode != 200 {
		t.Fatalf("provider-errors: %d", resp.StatusCode)
	}
	a, _ := json.Marshal(ts)
	b, _ := json.Marshal(pe.Errors)
	return ts, pe.Errors, string(a) + string(b)
}

// waitApplied waits until the applier has taken every stored callback and the worker's counts
// are folded into the rollup.
func waitApplied(t *testing.T, s *stacktest.Stack) {
	t.Helper()
	waitFor(t, "every callback applied", func() bool {
		var n int
		if err := s.Pool.QueryRow(context.Background(), `
			SELECT (SELECT count(*) FROM communication.callbacks WHERE outcome = 'pending')
			     + (SELECT count(*) FROM communication.analytics_deltas)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

func countCallbacks(t *testing.T, s *stacktest.Stack) int {
	t.Helper()
	var n int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.callbacks`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values, sig string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sig)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Journey B for SMS: a seller's messages go out through its Twilio account; Twilio's signed status
// callbacks move them to delivered or undelivered, the timeline shows each callback, and the
// analytics show sent vs delivered and "Twilio: Unreachable destination handset". Duplicated and
// out-of-order callbacks change nothing; unsigned ones are refused and leave no trace.
func TestTwilioCallbacksDriveStatusTimelineAndAnalytics(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	hook := s.StartWebhook()
	_, key := s.Tenant()

	cfg := createProvider(t, s, key, map[string]any{
		"type": "twilio", "name": "mine", "channel": "sms", "test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken},
		"sender":      map[string]any{"from": "+14155550100"},
	})
	ids := map[string]string{}
	for _, to := range []string{"+14155550001", "+14155550002", "+14155550003"} {
		ids[to] = s.Send(key, "", message.Request{Channel: message.SMS, To: to, Text: "code 1234"})
	}
	s.WaitAllFinal(30 * time.Second)
	sid := map[string]string{}
	for to, id := range ids {
		m := getMessage(s, key, id)
		if m.Status != message.Sent || m.ProviderMessageID == "" {
			t.Fatalf("%s: %+v", to, m)
		}
		sid[to] = m.ProviderMessageID
	}
	endpoint := hook.URL + "/webhooks/twilio/" + cfg.ID
	cb := func(to, status, code string) url.Values {
		return fakeprovider.TwilioStatus(tw.AccountSID, sid[to], to, status, code)
	}
	// Refused before anything is stored: no signature, a wrong token, a tampered body, another
	// type's path, an unknown config.
	before := countCallbacks(t, s)
	good := cb("+14155550001", "delivered", "")
	if code := postForm(t, s.Client, endpoint, good, ""); code != 401 {
		t.Fatalf("unsigned callback: %d", code)
	}
	if code := postForm(t, s.Client, endpoint, good, fakeprovider.TwilioSignature(strings.Repeat("0", 32), endpoint, good)); code != 401 {
		t.Fatalf("callback signed with another token: %d", code)
	}
	tampered := cb("+14155550001", "undelivered", "30003")
	if code := postForm(t, s.Client, endpoint, tampered, fakeprovider.TwilioSignature(tw.AuthToken, endpoint, good)); code != 401 {
		t.Fatalf("tampered callback: %d", code)
	}
	if code := postForm(t, s.Client, hook.URL+"/webhooks/resend/"+cfg.ID, good, ""); code != 404 {
		t.Fatalf("twilio config on the resend path: %d", code)
	}
	if code := postForm(t, s.Client, hook.URL+"/webhooks/twilio/prv_nope", good, ""); code != 404 {
		t.Fatalf("unknown config: %d", code)
	}
	if n := countCallbacks(t, s); n != before {
		t.Fatalf("refused callbacks were recorded: %d rows", n-before)
	}

	// The real sequence, with Twilio's usual duplicates and a late "sent" after "delivered".
	sequence := []url.Values{
		cb("+14155550001", "sent", ""), cb("+14155550001", "delivered", ""),
		cb("+14155550002", "sent", ""), cb("+14155550002", "undelivered", "30003"),
		cb("+14155550003", "delivered", ""), cb("+14155550003", "sent", ""),
	}
	post := func(seq []url.Values) {
		for _, f := range seq {
			resp, err := fakeprovider.PostTwilioCallback(s.Client, endpoint, tw.AuthToken, f)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("callback %v: %d", f, resp.StatusCode)
			}
		}
	}
	post(sequence)
	waitFor(t, "callbacks applied", func() bool {
		return getMessage(s, key, ids["+14155550001"]).Status == message.Delivered &&
			getMessage(s, key, ids["+14155550002"]).Status == message.Undelivered &&
			getMessage(s, key, ids["+14155550003"]).Status == message.Delivered
	})
	m := getMessage(s, key, ids["+14155550002"])
	var last message.Event
	for _, e := range m.Events {
		if e.Source == "provider" {
			last = e
		}
	}
	if last.Status != message.Undelivered || last.ErrorCode != "invalid_recipient" || !strings.Contains(last.Reason, "30003 Unreachable destination handset") ||
		last.ProviderType != "twilio" || last.ProviderConfigID != cfg.ID {
		t.Fatalf("timeline's last provider event: %+v", last)
	}
	if d := getMessage(s, key, ids["+14155550001"]); d.DeliveredAt == nil {
		t.Fatalf("delivered_at not set: %+v", d)
	}

	waitApplied(t, s)
	ts, errs, raw := analytics(t, s, key, "sms")
	if ts.Totals.Sent != 3 || ts.Totals.Delivered != 2 || ts.Totals.Failed != 1 {
		t.Fatalf("totals: %+v", ts.Totals)
	}
	if len(errs) != 1 || errs[0].ProviderType != "twilio" || errs[0].Code != "invalid_recipient" || errs[0].Count != 1 ||
		errs[0].Example.Message != "Unreachable destination handset" || errs[0].Example.ProviderCode != "30003" || errs[0].ProviderName != "mine" {
		t.Fatalf("provider errors: %+v", errs)
	}

	// Every callback again, twice, in reverse: nothing moves, nothing is counted again.
	for range 2 {
		rev := make([]url.Values, len(sequence))
		for i, f := range sequence {
			rev[len(sequence)-1-i] = f
		}
		post(rev)
	}
	waitApplied(t, s)
	if _, _, again := analytics(t, s, key, "sms"); again != raw {
		t.Fatalf("replayed callbacks changed the analytics:\n%s\n%s", raw, again)
	}
	if got := getMessage(s, key, ids["+14155550003"]); got.Status != message.Delivered {
		t.Fatalf("a late 'sent' moved a delivered message to %s", got.Status)
	}
}

// Journey B for email through SES and SNS: the subscription is confirmed, events arrive out of
// order (an open before its delivery), a hard bounce suppresses the recipient, and intake refuses
// it until the tenant lifts the suppression. Messages from another SNS topic are refused.
func TestSESEventsThroughSNS(t *testing.T) {
	t.Parallel()
	sesFake := fakeprovider.NewSES()
	defer sesFake.Close()
	sns := fakeprovider.NewSNS()
	defer sns.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{SESEndpoint: sesFake.URL,
		SNSHostPattern: fakeprovider.HostPattern, SNSClient: sns.Client(), SNSPort: sns.Port()}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	hook := s.StartWebhook()
	_, key := s.Tenant()
	topic := "arn:aws:sns:us-east-1:123456789012:ses-events"
	cfg := createProvider(t, s, key, map[string]any{
		"type": "ses", "name": "ses", "channel": "email", "test_recipient": "me@acme.example",
		"credentials": map[string]any{"region": sesFake.Region, "access_key_id": sesFake.AccessKeyID, "secret_access_key": sesFake.SecretAccessKey},
		"sender":      map[string]any{"from": "noreply@acme.example", "configuration_set": "comms", "sns_topic_arn": topic},
	})
	endpoint := hook.URL + "/webhooks/ses/" + cfg.ID
	postSNS := func(body []byte) int {
		resp, err := s.Client.Post(endpoint, "text/plain; charset=UTF-8", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := postSNS(sns.Message("SubscriptionConfirmation", topic, "You have chosen to subscribe", "2")); code != 200 || sns.Confirmed.Load() != 1 {
		t.Fatalf("subscription: %d, confirmed %d", code, sns.Confirmed.Load())
	}
	if code := postSNS(sns.Message("SubscriptionConfirmation", "arn:aws:sns:us-east-1:999999999999:theirs", "x", "2")); code != 401 || sns.Confirmed.Load() != 1 {
		t.Fatalf("another topic's subscription: %d, confirmed %d", code, sns.Confirmed.Load())
	}

	ok := s.Send(key, "", message.Request{Channel: message.Email, To: "Ada <ada@example.com>", Subject: "hi", Text: "hello"})
	bad := s.Send(key, "", message.Request{Channel: message.Email, To: "Gone@Example.com", Subject: "hi", Text: "hello"})
	s.WaitAllFinal(30 * time.Second)
	okM, badM := getMessage(s, key, ok), getMessage(s, key, bad)
	now := time.Now().UTC()
	var sent [][]byte
	for _, e := range []struct {
		kind, pmid, to string
		at             time.Time
	}{
		{"Open", okM.ProviderMessageID, "ada@example.com", now.Add(2 * time.Second)},
		{"Click", okM.ProviderMessageID, "ada@example.com", now.Add(3 * time.Second)},
		{"Delivery", okM.ProviderMessageID, "ada@example.com", now.Add(time.Second)},
		{"Bounce", badM.ProviderMessageID, "gone@example.com", now.Add(time.Second)},
	} {
		// Each event in both signature versions: two notifications (two SNS MessageIds) of the
		// same kind, which move nothing twice.
		for _, version := range []string{"1", "2"} {
			body := sns.Message("Notification", topic, fakeprovider.SESEvent(e.kind, e.pmid, e.to, e.at), version)
			sent = append(sent, body)
			if code := postSNS(body); code != 200 {
				t.Fatalf("%s: %d", e.kind, code)
			}
		}
	}
	if code := postSNS(sns.Message("Notification", "arn:aws:sns:us-east-1:999999999999:theirs",
		fakeprovider.SESEvent("Delivery", badM.ProviderMessageID, "gone@example.com", now), "2")); code != 401 {
		t.Fatalf("a notification from another topic: %d", code)
	}
	waitFor(t, "SES events applied", func() bool {
		return getMessage(s, key, ok).Status == message.Delivered && getMessage(s, key, bad).Status == message.Bounced
	})
	waitApplied(t, s)
	okM = getMessage(s, key, ok)
	if okM.OpenedAt == nil || okM.ClickedAt == nil || okM.DeliveredAt == nil {
		t.Fatalf("engagement not recorded: %+v", okM)
	}
	ts, errs, raw := analytics(t, s, key, "email")
	if ts.Totals.Sent != 2 || ts.Totals.Delivered != 1 || ts.Totals.Opened != 1 || ts.Totals.Clicked != 1 || ts.Totals.Bounced != 1 {
		t.Fatalf("totals: %+v", ts.Totals)
	}
	if len(errs) != 1 || errs[0].Code != "invalid_recipient" || errs[0].Count != 2 || !strings.Contains(errs[0].Example.Message, "550 5.1.1 user unknown") {
		t.Fatalf("provider errors: %+v", errs)
	}
	// SNS's own retries (the same notification again) twice over, newest first: nothing changes.
	for range 2 {
		for i := len(sent) - 1; i >= 0; i-- {
			if code := postSNS(sent[i]); code != 200 {
				t.Fatalf("replayed notification: %d", code)
			}
		}
	}
	waitApplied(t, s)
	if _, _, again := analytics(t, s, key, "email"); again != raw {
		t.Fatalf("replayed notifications changed the analytics:\n%s\n%s", raw, again)
	}

	// The hard bounce suppressed the address (whatever its case or display name).
	var prob api.Problem
	resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.Email, To: "Someone <gone@example.COM>", Subject: "hi", Text: "again"}, nil, &prob)
	if resp.StatusCode != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "to" || !strings.HasSuffix(prob.Type, "recipient-suppressed") {
		t.Fatalf("send to a bounced address: %d %+v", resp.StatusCode, prob)
	}
	var list struct{ Data []api.Suppression }
	s.Do("GET", "/v1/suppressions?channel=email", key, nil, nil, &list)
	if len(list.Data) != 1 || list.Data[0].Recipient != "gone@example.com" || list.Data[0].Reason != "bounce" || list.Data[0].MessageID != bad {
		t.Fatalf("suppressions: %+v", list.Data)
	}
	if resp := s.Do("DELETE", "/v1/suppressions/email/"+url.PathEscape("Gone@Example.com"), key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete suppression: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.Email, To: "gone@example.com", Subject: "hi", Text: "again"}, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("send after lifting the suppression: %d", resp.StatusCode)
	}
}

// Resend's Svix-signed webhooks: delivered and clicked move the message; a stale timestamp, a
// wrong secret, a malformed or oversized body are refused and recorded nowhere.
func TestResendWebhooks(t *testing.T) {
	t.Parallel()
	rs := fakeprovider.NewResend()
	defer rs.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{ResendBaseURL: rs.URL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	hook := s.StartWebhook()
	_, key := s.Tenant()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := createProvider(t, s, key, map[string]any{
		"type": "resend", "name": "rs", "channel": "email", "test_recipient": "me@acme.example",
		"credentials": map[string]any{"api_key": rs.APIKey, "webhook_secret": secret},
		"sender":      map[string]any{"from": "noreply@acme.example"},
	})
	id := s.Send(key, "", message.Request{Channel: message.Email, To: "ada@example.com", Subject: "hi", Text: "hello"})
	s.WaitAllFinal(30 * time.Second)
	pmid := getMessage(s, key, id).ProviderMessageID
	endpoint := hook.URL + "/webhooks/resend/" + cfg.ID
	send := func(secret string, ts time.Time, body []byte) int {
		resp, err := fakeprovider.PostResendEvent(s.Client, endpoint, secret, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 && !strings.Contains(string(b), `"status"`) {
			t.Fatalf("%d without a problem body: %s", resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	now := time.Now()
	before := countCallbacks(t, s)
	for name, c := range map[string]struct {
		secret string
		ts     time.Time
		body   []byte
		want   int
	}{
		"stale":     {secret, now.Add(-10 * time.Minute), fakeprovider.ResendEvent("email.delivered", pmid, "ada@example.com", now), 401},
		"wrong key": {"whsec_" + strings.Repeat("QUFB", 8), now, fakeprovider.ResendEvent("email.delivered", pmid, "ada@example.com", now), 401},
		"not json":  {secret, now, []byte("{"), 400},
		"not email": {secret, now, []byte(`{"type":"domain.created","created_at":"2026-11-22T10:00:00Z","data":{"email_id":"x"}}`), 400},
		"too large": {secret, now, bytes.Repeat([]byte("a"), provider.MaxCallbackBody+1), 413},
	} {
		if got := send(c.secret, c.ts, c.body); got != c.want {
			t.Fatalf("%s: %d, want %d", name, got, c.want)
		}
	}
	if n := countCallbacks(t, s); n != before {
		t.Fatalf("refused callbacks were recorded: %d", n-before)
	}
	for _, typ := range []string{"email.sent", "email.clicked", "email.delivered"} {
		if got := send(secret, now, fakeprovider.ResendEvent(typ, pmid, "ada@example.com", now)); got != 200 {
			t.Fatalf("%s: %d", typ, got)
		}
	}
	waitFor(t, "resend events applied", func() bool {
		m := getMessage(s, key, id)
		return m.Status == message.Delivered && m.ClickedAt != nil
	})
	waitApplied(t, s)
	ts, _, _ := analytics(t, s, key, "email")
	if ts.Totals.Delivered != 1 || ts.Totals.Clicked != 1 || ts.Totals.Opened != 0 {
		t.Fatalf("totals: %+v", ts.Totals)
	}

}
