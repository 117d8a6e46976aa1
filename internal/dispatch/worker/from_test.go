package worker_test

import (
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// A message's own from (docs/providers.md#from) is what the provider is asked to send from, and
// what the tenant reads back, when one of the tenant's configs may send from it; intake refuses
// any other from, naming the field, alone and per item in a batch. A failover goes only to a
// config that may send from the message's from: the backup config does not list the main one's
// other number, so that message waits for its retry on the main config rather than going out
// from another number. A from a config change took away after the message was accepted fails
// it with invalid_sender: it is never sent from an address the tenant did not name.
func TestAMessagesFromIsSentOrRefused(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	w := s.StartWorker(retrying)
	tid, key := ownOnly(t, s)
	var main api.Provider
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{
		"type": "twilio", "name": "main", "channel": "sms", "priority": 1, "test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken},
		"sender":      map[string]any{"from": "+14155550001", "senders": []string{"+14155550123", "Acme"}},
	}, nil, &main); resp.StatusCode != 201 {
		t.Fatalf("create provider: %d", resp.StatusCode)
	}
	addTwilio(t, s, key, tw, "backup", "+14155550002", 2)

	var prob api.Problem
	resp := s.Do("POST", "/v1/messages", key, map[string]any{"channel": "sms", "to": "+14155550303", "from": "+14155550999", "text": "x"}, nil, &prob)
	if resp.StatusCode != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "from" {
		t.Fatalf("a from no config lists: %d %+v", resp.StatusCode, prob)
	}
	var batch api.BatchResult
	resp = s.Do("POST", "/v1/messages/batch", key, map[string]any{"messages": []map[string]any{
		{"channel": "sms", "to": "+14155550306", "from": "Acme", "text": "ok"},
		{"channel": "sms", "to": "+14155550307", "from": "Other", "text": "refused"},
	}}, nil, &batch)
	if resp.StatusCode != 200 || batch.Accepted != 1 || batch.Items[1].Error == nil ||
		batch.Items[1].Error.Errors[0].Field != "messages[1].from" {
		t.Fatalf("a batch with one bad from: %d %+v %+v", resp.StatusCode, batch, batch.Items[len(batch.Items)-1].Error)
	}

	tw.FailTimes("+14155550301", provider.ProviderUnavailable, 1)
	tw.FailTimes("+14155550302", provider.ProviderUnavailable, 1)
	other := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550301", From: "+14155550123", Text: "from the main config's other number"})
	plain := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550302", Text: "from a config's own"})
	backup := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550305", From: "+14155550002", Text: "from the backup's number"})
	s.WaitAllFinal(30 * time.Second)
	sentFrom := map[string]string{}
	for _, r := range tw.Received() {
		sentFrom[r.To] = r.From
	}
	want := map[string]string{"+14155550301": "+14155550123", "+14155550302": "+14155550002", "+14155550305": "+14155550002", "+14155550306": "Acme"}
	for to, from := range want {
		if sentFrom[to] != from {
			t.Errorf("to %s: sent from %q, want %q", to, sentFrom[to], from)
		}
	}
	if m := getMessage(t, s, tid, other); m.Status != message.Sent || m.From != "+14155550123" || m.Attempts != 2 || m.ProviderConfigID != main.ID {
		t.Errorf("the message from the main config's other number: %s from %q after %d attempts through %s; want sent through %s on its retry",
			m.Status, m.From, m.Attempts, m.ProviderConfigID, main.ID)
	}
	if m := getMessage(t, s, tid, plain); m.Status != message.Sent || m.Attempts != 1 {
		t.Errorf("the message without a from: %s after %d attempts; want sent by failing over", m.Status, m.Attempts)
	}
	if m := getMessage(t, s, tid, backup); m.Status != message.Sent {
		t.Errorf("the message from the backup's number: %s", m.Status)
	}

	// Accepted, then the main config no longer lists the number before a worker takes it.
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	late := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550308", From: "+14155550123", Text: "accepted before the change"})
	if resp := s.Do("PATCH", "/v1/providers/"+main.ID, key, map[string]any{"test_recipient": "+14155550199",
		"sender": map[string]any{"from": "+14155550001"}}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("patch provider: %d", resp.StatusCode)
	}
	s.StartWorker(retrying)
	s.WaitAllFinal(30 * time.Second)
	if m := getMessage(t, s, tid, late); m.Status != message.Failed || m.Error == nil || m.Error.Code != string(provider.InvalidSender) {
		t.Fatalf("a from taken away after acceptance: %s %+v", m.Status, m.Error)
	}
	if sentFrom := tw.Received(); sentFrom[len(sentFrom)-1].To == "+14155550308" {
		t.Fatal("the message was sent")
	}
}
