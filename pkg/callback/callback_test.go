package callback_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/fakeprovider"
	"github.com/logicspike/comms/pkg/callback"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Twilio's published example (its security docs, and twilio-go's own test vector).
func TestTwilioSignaturePublishedExample(t *testing.T) {
	u := "https://mycompany.com/myapp.php?foo=1&bar=2"
	form := url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}}
	if err := callback.VerifyTwilio("12345", u, form, "vOEb5UThFn24KEfnOFLQY2AE5FY="); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	form.Set("Digits", "1235")
	if err := callback.VerifyTwilio("12345", u, form, "vOEb5UThFn24KEfnOFLQY2AE5FY="); !errors.Is(err, callback.ErrUnverified) {
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
			err := callback.VerifyTwilio(c.token, c.url, form, c.sig)
			if (err == nil) != c.ok {
				t.Fatalf("VerifyTwilio = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// The example Svix publishes for its verification libraries (also Standard Webhooks' example).
func TestResendSignaturePublishedExample(t *testing.T) {
	h := http.Header{}
	h.Set("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("svix-timestamp", "1614265330")
	h.Set("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	at := time.Unix(1614265330, 0)
	if err := callback.VerifyResend(secret, h, body, at.Add(time.Minute)); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	if err := callback.VerifyResend(secret, h, body, at.Add(6*time.Minute)); !errors.Is(err, callback.ErrUnverified) {
		t.Fatalf("a signature outside the 5 minute tolerance was accepted: %v", err)
	}
	if err := callback.VerifyResend(secret, h, []byte(`{"test": 2432232315}`), at); !errors.Is(err, callback.ErrUnverified) {
		t.Fatalf("a tampered body was accepted: %v", err)
	}
	// Svix rotates secrets by sending several signatures; any one matching is enough.
	h.Set("svix-signature", "v1,bm90IHRoaXMgb25l v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := callback.VerifyResend(secret, h, body, at); err != nil {
		t.Fatalf("second of two signatures not accepted: %v", err)
	}
}

func TestSNSSignatureVersions(t *testing.T) {
	sns := fakeprovider.NewSNS()
	defer sns.Close()
	v, err := callback.NewSNSVerifier(fakeprovider.HostPattern, sns.Client())
	if err != nil {
		t.Fatal(err)
	}
	v.WithPort(sns.Port())
	ctx := context.Background()
	topic := "arn:aws:sns:us-east-1:123456789012:ses-events"
	for _, version := range []string{"1", "2"} {
		t.Run("v"+version, func(t *testing.T) {
			m, err := callback.ParseSNS(sns.Message("Notification", topic, fakeprovider.SESEvent("Delivery", "0100-1", "a@b.example", time.Now()), version))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, m); err != nil {
				t.Fatalf("valid v%s signature rejected: %v", version, err)
			}
			tampered := m
			tampered.Message = strings.Replace(m.Message, "Delivery", "Bounce", 1)
			if err := v.Verify(ctx, tampered); !errors.Is(err, callback.ErrUnverified) {
				t.Fatalf("tampered message accepted: %v", err)
			}
		})
	}

	m, _ := callback.ParseSNS(sns.Message("Notification", topic, "{}", "2"))
	for name, certURL := range map[string]string{
		"http scheme":        strings.Replace(sns.CertURL(), "https://", "http://", 1),
		"foreign host":       "https://sns.attacker.example/cert.pem",
		"userinfo smuggling": "https://127.0.0.1@evil.example/cert.pem",
		"another port":       "https://127.0.0.1:1/cert.pem",
		"default port":       "https://127.0.0.1/cert.pem",
	} {
		t.Run(name, func(t *testing.T) {
			bad := m
			bad.SigningCertURL = certURL
			if err := v.Verify(ctx, bad); !errors.Is(err, callback.ErrUnverified) {
				t.Fatalf("SigningCertURL %q accepted: %v", certURL, err)
			}
		})
	}

	// Subscription confirmations are followed only to the SNS host pattern.
	c, err := callback.ParseSNS(sns.Message("SubscriptionConfirmation", topic, "You have chosen to subscribe", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := v.Confirm(ctx, c); err != nil || sns.Confirmed.Load() != 1 {
		t.Fatalf("confirm: %v, confirmed %d", err, sns.Confirmed.Load())
	}
	c.SubscribeURL = "https://169.254.169.254/latest/meta-data/"
	if err := v.Confirm(ctx, c); err == nil || sns.Confirmed.Load() != 1 {
		t.Fatalf("SubscribeURL off the SNS host was followed: %v", err)
	}
	// The default pattern is AWS's.
	def, _ := callback.NewSNSVerifier("", nil)
	if err := def.Verify(ctx, m); !errors.Is(err, callback.ErrUnverified) {
		t.Fatalf("a loopback certificate URL passed the default pattern: %v", err)
	}
	// On an SNS host, only port 443.
	onAWS := m
	onAWS.SigningCertURL = "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem"
	if err := def.Verify(ctx, onAWS); !errors.Is(err, callback.ErrUnverified) {
		t.Fatalf("a certificate URL on an SNS host's port 8443 was accepted: %v", err)
	}
}

func TestParseSESEvents(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		event    string
		status   message.Status
		code     provider.Code
		suppress string
	}{
		{"Send", message.Accepted, "", ""},
		{"Delivery", message.Delivered, "", ""},
		{"Bounce", message.Bounced, provider.InvalidRecipient, "bounce"},
		{"Complaint", message.Complained, "", "complaint"},
		{"Open", message.Opened, "", ""},
		{"Click", message.Clicked, "", ""},
		{"Reject", message.Failed, provider.ContentRejected, ""},
		{"DeliveryDelay", message.Delayed, "", ""},
	}
	for _, c := range cases {
		t.Run(c.event, func(t *testing.T) {
			n := callback.SNSMessage{Type: "Notification", MessageID: "sns-1", Message: fakeprovider.SESEvent(c.event, "0100-abc", "Ada@Example.com", at)}
			cb, err := callback.ParseSES("prv_1", n)
			if err != nil {
				t.Fatal(err)
			}
			if cb.Status != c.status || cb.ErrorCode != string(c.code) || cb.Suppress != c.suppress || cb.ProviderMessageID != "0100-abc" ||
				cb.EventKey != "sns-1" || !cb.OccurredAt.Equal(at) || cb.Recipient != "Ada@Example.com" {
				t.Fatalf("ParseSES(%s) = %+v", c.event, cb)
			}
		})
	}
	transient := strings.Replace(fakeprovider.SESEvent("Bounce", "0100-abc", "a@b.example", at), `"Permanent"`, `"Transient"`, 1)
	cb, err := callback.ParseSES("prv_1", callback.SNSMessage{MessageID: "x", Message: transient})
	if err != nil || cb.Suppress != "" || cb.ErrorCode != string(provider.MailboxUnavailable) {
		t.Fatalf("a transient bounce must not suppress: %+v %v", cb, err)
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
			cb, err := callback.ParseTwilio("prv_1", fakeprovider.TwilioStatus("AC1", "SM1", "+14155550123", c.status, c.errCode), now)
			if err != nil {
				t.Fatal(err)
			}
			if cb.Status != c.want || cb.ErrorCode != string(c.code) || cb.Suppress != c.suppress || cb.EventKey != "SM1:"+c.status ||
				cb.ProviderCode != c.errCode || (c.errCode != "" && cb.Reason == "") {
				t.Fatalf("ParseTwilio = %+v", cb)
			}
		})
	}
	if _, err := callback.ParseTwilio("prv_1", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"exploded"}}, now); !errors.Is(err, callback.ErrMalformed) {
		t.Fatalf("unknown status accepted: %v", err)
	}
}

func TestParseResendEvents(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for typ, want := range map[string]message.Status{
		"email.sent": message.Sent, "email.delivered": message.Delivered, "email.bounced": message.Bounced,
		"email.complained": message.Complained, "email.opened": message.Opened, "email.clicked": message.Clicked,
		"email.delivery_delayed": message.Delayed,
	} {
		cb, err := callback.ParseResend("prv_1", "msg_1", fakeprovider.ResendEvent(typ, "4ef9-1", "a@b.example", at))
		if err != nil || cb.Status != want || !cb.OccurredAt.Equal(at) || cb.ProviderMessageID != "4ef9-1" {
			t.Fatalf("%s: %+v %v", typ, cb, err)
		}
	}
	if _, err := callback.ParseResend("prv_1", "msg_1", []byte(`{"type":"contact.created","created_at":"2026-11-22T10:00:00Z","data":{"email_id":"x"}}`)); !errors.Is(err, callback.ErrMalformed) {
		t.Fatalf("a non-email event was accepted: %v", err)
	}
}
