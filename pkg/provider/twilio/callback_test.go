package twilio_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/providertest"
	"github.com/logicspike/comms/pkg/provider/twilio"
)

// Twilio's published example (its security docs, and twilio-go's own test vector).

func TestTwilioSignaturePublishedExample(t *testing.T) {
	u := "https://mycompany.com/myapp.php?foo=1&bar=2"
	form := url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	if err := twilio.VerifySignature("12345", u, form, "vOEb5UThFn24KEfnOFLQY2AE5FY="); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	form.Set("Digits", "1235")
	if err := twilio.VerifySignature("12345", u, form, "vOEb5UThFn24KEfnOFLQY2AE5FY="); !errors.Is(err, provider.ErrUnverified) {
		t.Fatalf("tampered parameter accepted: %v", err)
	}
}

func TestTwilioSignatureFromIndependentSigner(t *testing.T) {
	token := strings.Repeat("7f", 16)
	u := "https://hooks.example.com/webhooks/twilio/prv_1"
	form := fakeprovider.TwilioStatus("AC"+strings.Repeat("0", 32), "SM1", "+14155550123", "delivered", "")
	sig := fakeprovider.TwilioSignature(token, u, form)
	cases := []struct {
		name       string
		token, url string
		sig        string
		ok         bool
	}{
		{"valid", token, u, sig, true},
		{"wrong token", strings.Repeat("00", 16), u, sig, false},
		{"url as seen behind a proxy", token, "http://10.0.0.5:8081/webhooks/twilio/prv_1", sig, false},
		{"missing signature", token, u, "", false},
		{"garbage", token, u, "!!", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := twilio.VerifySignature(c.token, c.url, form, c.sig)
			if (err == nil) != c.ok {
				t.Fatalf("VerifyTwilio = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestParseTwilioStatuses(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		status, errCode string
		want            message.Status
		code            provider.Code
		suppress        string
	}{
		{"queued", "", message.Accepted, "", ""},
		{"sent", "", message.Sent, "", ""},
		{"delivered", "", message.Delivered, "", ""},
		{"undelivered", "30003", message.Undelivered, provider.InvalidRecipient, ""},
		{"failed", "30007", message.Failed, provider.ContentRejected, ""},
		{"failed", "21610", message.Failed, provider.InvalidRecipient, "complaint"},
		{"undelivered", "", message.Undelivered, provider.Unknown, ""},
		{"read", "", message.Opened, "", ""},
	}
	for _, c := range cases {
		t.Run(c.status+c.errCode, func(t *testing.T) {
			cb, err := twilio.ParseCallback("prv_1", fakeprovider.TwilioStatus("AC1", "SM1", "+14155550123", c.status, c.errCode), now)
			if err != nil {
				t.Fatal(err)
			}
			if cb.Status != c.want || cb.ErrorCode != string(c.code) || cb.Suppress != c.suppress || cb.EventKey != "SM1:"+c.status ||
				cb.ProviderCode != c.errCode || (c.errCode != "" && cb.Reason == "") {
				t.Fatalf("ParseTwilio = %+v", cb)
			}
		})
	}
	if _, err := twilio.ParseCallback("prv_1", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"exploded"}}, now); !errors.Is(err, provider.ErrMalformed) {
		t.Fatalf("unknown status accepted: %v", err)
	}
}

// The parsers read bodies from the internet (after verification, but a provider's bug or a
// leaked secret makes that no guarantee): they must never panic, and must either fail with
// ErrMalformed or return a callback the inbox can store.

func FuzzParseTwilio(f *testing.F) {
	f.Add(fakeprovider.TwilioStatus("AC1", "SM1", "+14155550123", "undelivered", "30003").Encode())
	f.Add("MessageSid=SM1&MessageStatus=delivered&RawDlrDoneDate=2611221000")
	f.Add("MessageStatus=%zz")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		cb, err := twilio.ParseCallback("prv_1", form, time.Now())
		providertest.CheckEvent(t, cb, err)
	})
}
