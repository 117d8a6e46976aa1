package receiver_test

import (
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
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// A person's SMS to a tenant's Twilio number, signed by Twilio, is kept as an inbound message
// (in the list and by id, with its timeline) and published as comms.message.received; STOP
// suppresses the sender (reason stop) and START lifts it; HELP changes nothing; Twilio's retry of
// one message is recorded once; an unsigned request, or one for another account, changes nothing.
func TestInboundSMS(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	t.Cleanup(tw.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: stacktest.PublicURL}})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s.StartDeliverer(webhooks.Config{})
	hook := s.StartWebhook()
	_, key := s.Tenant()
	sink := s.EventSink(key, event.Received)
	cfg := s.TwilioConfig(key, tw)
	var shown api.Provider
	if resp := s.Do("GET", "/v1/providers/"+cfg, key, nil, nil, &shown); resp.StatusCode != 200 ||
		shown.InboundURL != stacktest.PublicURL+"/webhooks/twilio/"+cfg+"/inbound" {
		t.Fatalf("the config's inbound_url: %d %q", resp.StatusCode, shown.InboundURL)
	}
	inboundURL := hook.URL + "/webhooks/twilio/" + cfg + "/inbound"
	const person = "+14155550177"
	form := func(sid, from, body string) url.Values {
		return url.Values{"AccountSid": {tw.AccountSID}, "MessageSid": {sid}, "SmsSid": {sid}, "From": {from}, "To": {"+14155550100"},
			"Body": {body}, "NumMedia": {"0"}, "ApiVersion": {"2010-04-01"}}
	}
	post := func(f url.Values, token string) (int, string) {
		t.Helper()
		resp, err := fakeprovider.PostTwilioCallback(http.DefaultClient, inboundURL, token, f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	inbound := func() []message.Message {
		t.Helper()
		var page struct{ Data []message.Message }
		if resp := s.Do("GET", "/v1/messages?status=received", key, nil, nil, &page); resp.StatusCode != 200 {
			t.Fatalf("list: %d", resp.StatusCode)
		}
		return page.Data
	}
	suppression := func() string {
		t.Helper()
		var page struct{ Data []api.Suppression }
		s.Do("GET", "/v1/suppressions?channel=sms&recipient="+url.QueryEscape(person), key, nil, nil, &page)
		if len(page.Data) == 0 {
			return ""
		}
		return page.Data[0].Reason
	}
	send := func() int {
		return s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: person, Text: "hi"}, nil, nil).StatusCode
	}

	if status, body := post(form("SM00000000000000000000000000000001", person, "Hello there"), tw.AuthToken); status != 200 || !strings.Contains(body, "<Response></Response>") {
		t.Fatalf("inbound: %d %s", status, body)
	}
	if status, _ := post(form("SM00000000000000000000000000000001", person, "Hello there"), tw.AuthToken); status != 200 {
		t.Fatalf("Twilio's retry: %d", status)
	}
	got := inbound()
	if len(got) != 1 {
		t.Fatalf("%d inbound messages, want 1 (the retry recorded once)", len(got))
	}
	var m message.Message
	if resp := s.Do("GET", "/v1/messages/"+got[0].ID, key, nil, nil, &m); resp.StatusCode != 200 || m.Direction != message.Inbound || m.To != person ||
		m.From != "+14155550100" || m.Text != "Hello there" || m.ProviderConfigID != cfg || m.ProviderMessageID != "SM00000000000000000000000000000001" ||
		len(m.Events) != 1 || m.Events[0].Status != message.Received {
		t.Fatalf("the inbound message: %d %+v", resp.StatusCode, m)
	}

	post(form("SM00000000000000000000000000000002", person, "Stop"), tw.AuthToken)
	if r := suppression(); r != "stop" || send() != 422 {
		t.Fatalf("after STOP: suppression %q", r)
	}
	post(form("SM00000000000000000000000000000003", person, "help"), tw.AuthToken)
	if r := suppression(); r != "stop" {
		t.Fatalf("after HELP: suppression %q", r)
	}
	post(form("SM00000000000000000000000000000004", person, "START"), tw.AuthToken)
	if r := suppression(); r != "" || send() != 202 {
		t.Fatalf("after START: suppression %q", r)
	}

	// unsigned, or signed for another account: refused, nothing kept
	if status, _ := post(form("SM00000000000000000000000000000005", person, "STOP"), "another-token-0123456789abcdef01"); status != 401 {
		t.Fatalf("a wrong signature: %d", status)
	}
	other := form("SM00000000000000000000000000000006", person, "STOP")
	other.Set("AccountSid", "AC"+strings.Repeat("0", 32))
	if status, _ := post(other, tw.AuthToken); status != 401 {
		t.Fatalf("another account: %d", status)
	}
	if n := len(inbound()); n != 4 || suppression() != "" {
		t.Fatalf("%d inbound messages, suppression %q after refused requests", n, suppression())
	}

	if first := s.WaitEvents(sink, 4, 20*time.Second)[0]; first.Data.Recipient != person || first.Data.Channel != "sms" {
		t.Fatalf("comms.message.received: %+v", first)
	}
}

// Save & Test points the config's numbers at its inbound_url where the credentials allow: the
// "A message comes in" webhook (POST) of its from and of its other senders that are numbers of
// the account, or a Messaging Service's inbound request URL. What it cannot do (a number not on
// the account, a service deferring to its numbers' webhooks) is said in the answer, and the config
// is saved all the same.
func TestSaveAndTestPointsTheNumbersAtComms(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	t.Cleanup(tw.Close)
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: stacktest.PublicURL}})
	_, key := s.Tenant()
	tw.AddNumber("+14155550100")
	tw.AddNumber("+14155550101")
	const service = "MG0123456789abcdef0123456789abcdef"
	tw.AddService(service, true)
	create := func(name string, sender map[string]any) api.Provider {
		t.Helper()
		var p api.Provider
		if resp := s.Do("POST", "/v1/providers", key, map[string]any{
			"type": "twilio", "name": name, "channel": "sms", "test_recipient": "+14155550199",
			"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken}, "sender": sender,
		}, nil, &p); resp.StatusCode != 201 || p.Test == nil {
			t.Fatalf("create %s: %d", name, resp.StatusCode)
		}
		return p
	}

	numbers := create("numbers", map[string]any{"from": "+14155550100", "senders": []string{"+14155550101", "+14155550102", "Acme"}})
	in := numbers.Test.Inbound
	if in == nil || strings.Join(in.Configured, " ") != "+14155550100 +14155550101" || !strings.Contains(in.Detail, "+14155550102 is not a number of this account") {
		t.Fatalf("Save & Test's inbound setup: %+v", in)
	}
	for _, n := range []string{"+14155550100", "+14155550101"} {
		if url, method := tw.SMSWebhook(n); url != numbers.InboundURL || method != "POST" {
			t.Errorf("%s's SMS webhook: %s %q; want POST %s", n, method, url, numbers.InboundURL)
		}
	}

	svc := create("service", map[string]any{"messaging_service_sid": service})
	if in := svc.Test.Inbound; in == nil || strings.Join(in.Configured, " ") != service || !strings.Contains(in.Detail, "use_inbound_webhook_on_number") {
		t.Fatalf("Save & Test's inbound setup of a Messaging Service: %+v", in)
	}
	if url, method := tw.ServiceInbound(service); url != svc.InboundURL || method != "POST" {
		t.Fatalf("the service's inbound request URL: %s %q; want POST %s", method, url, svc.InboundURL)
	}

	// A re-test with a new sender points the new number too; the old one keeps its webhook.
	tw.AddNumber("+14155550103")
	var patched api.Provider
	if resp := s.Do("PATCH", "/v1/providers/"+numbers.ID, key, map[string]any{"test_recipient": "+14155550199",
		"sender": map[string]any{"from": "+14155550103"}}, nil, &patched); resp.StatusCode != 200 || patched.Test == nil ||
		patched.Test.Inbound == nil || strings.Join(patched.Test.Inbound.Configured, " ") != "+14155550103" {
		t.Fatalf("PATCH with a new sender: %d %+v", resp.StatusCode, patched.Test)
	}
}
