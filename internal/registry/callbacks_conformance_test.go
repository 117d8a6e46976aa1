package registry_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/providertest"
)

func callbackHarnesses(t *testing.T) map[string]providertest.CallbackHarness {
	sns := fakeprovider.NewSNS()
	t.Cleanup(sns.Close)
	const hookURL = "https://hooks.example/webhooks/"
	secret := func(c provider.Config, key string) string {
		var m map[string]string
		_ = json.Unmarshal(c.Credentials, &m)
		return m[key]
	}
	twilioStatus := map[message.Status][2]string{
		message.Sent: {"sent", ""}, message.Delivered: {"delivered", ""}, message.Undelivered: {"undelivered", "30003"},
		message.Failed: {"failed", "30008"}, message.Opened: {"read", ""},
	}
	resendType := map[message.Status]string{
		message.Sent: "email.sent", message.Delivered: "email.delivered", message.Delayed: "email.delivery_delayed",
		message.Bounced: "email.bounced", message.Complained: "email.complained", message.Opened: "email.opened",
		message.Clicked: "email.clicked",
	}
	sesType := map[message.Status]string{
		message.Delivered: "Delivery", message.Bounced: "Bounce", message.Complained: "Complaint", message.Opened: "Open",
		message.Clicked: "Click", message.Delayed: "DeliveryDelay", message.Failed: "Reject",
	}
	const topic = "arn:aws:sns:us-east-1:123456789012:ses-events"
	return map[string]providertest.CallbackHarness{
		"twilio": {
			Config: provider.Config{ID: "prv_tw", TenantID: "ten_a", Type: "twilio", Channel: message.SMS,
				Credentials: raw(map[string]any{"account_sid": "AC" + strings.Repeat("1", 32), "auth_token": strings.Repeat("a", 32)})},
			Request: func(_ *testing.T, c provider.Config, pmid string, st message.Status) provider.CallbackRequest {
				s := twilioStatus[st]
				form := fakeprovider.TwilioStatus(secret(c, "account_sid"), pmid, "+14155551000", s[0], s[1])
				u := hookURL + "twilio/" + c.ID
				h := http.Header{"X-Twilio-Signature": {fakeprovider.TwilioSignature(secret(c, "auth_token"), u, form)}}
				return provider.CallbackRequest{Config: c, URL: u, Header: h, Body: []byte(form.Encode()), Now: time.Now()}
			},
			Statuses: sortedKeys(twilioStatus),
			OtherSecrets: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["auth_token"] = strings.Repeat("b", 32) })
			},
		},
		"resend": {
			Config: provider.Config{ID: "prv_rs", TenantID: "ten_a", Type: "resend", Channel: message.Email,
				Credentials: raw(map[string]any{"api_key": "re_123456789", "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})},
			Request: func(_ *testing.T, c provider.Config, pmid string, st message.Status) provider.CallbackRequest {
				now := time.Now()
				body := fakeprovider.ResendEvent(resendType[st], pmid, "user@example.com", now)
				id := "msg_" + url.PathEscape(pmid) + "_" + string(st)
				h := http.Header{"Svix-Id": {id}, "Svix-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
					"Svix-Signature": {fakeprovider.SvixSignature(secret(c, "webhook_secret"), id, now.Unix(), body)}}
				return provider.CallbackRequest{Config: c, URL: hookURL + "resend/" + c.ID, Header: h, Body: body, Now: now}
			},
			Statuses: sortedKeys(resendType),
			OtherSecrets: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["webhook_secret"] = "whsec_" + strings.Repeat("QUFB", 8) })
			},
		},
		"ses": {
			Config: provider.Config{ID: "prv_ses", TenantID: "ten_a", Type: "ses", Channel: message.Email,
				Sender: raw(map[string]any{"from": "noreply@acme.example", "sns_topic_arn": topic})},
			Env: provider.Env{SNSHostPattern: fakeprovider.HostPattern, SNSClient: sns.Client(), SNSPort: sns.Port()},
			Request: func(_ *testing.T, c provider.Config, pmid string, st message.Status) provider.CallbackRequest {
				body := sns.Message("Notification", topic, fakeprovider.SESEvent(sesType[st], pmid, "user@example.com", time.Now()), "2")
				return provider.CallbackRequest{Config: c, URL: hookURL + "ses/" + c.ID, Header: http.Header{}, Body: body, Now: time.Now()}
			},
			Statuses: sortedKeys(sesType),
			// AWS signs every topic alike: what stands for another account is another topic
			OtherSecrets: func(c provider.Config) provider.Config {
				c.Sender = raw(map[string]any{"from": "noreply@acme.example", "sns_topic_arn": "arn:aws:sns:us-east-1:999999999999:theirs"})
				return c
			},
		},
	}
}

// TestCallbackConformance holds every provider that calls back to the callbacks contract, and
// fails when a registered provider with Callbacks has no harness here.
func TestCallbackConformance(t *testing.T) {
	hs := callbackHarnesses(t)
	for _, typ := range provider.CallbackTypes() {
		h, ok := hs[typ]
		if !ok {
			t.Errorf("%s registers Callbacks but has no harness in callbackHarnesses", typ)
			continue
		}
		t.Run(typ, func(t *testing.T) { providertest.RunCallbacks(t, h) })
	}
	if len(hs) != len(provider.CallbackTypes()) {
		t.Errorf("harnesses for %d types, %v call back", len(hs), provider.CallbackTypes())
	}
}

func sortedKeys[V any](m map[message.Status]V) []message.Status {
	var out []message.Status
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
