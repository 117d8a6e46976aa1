package ses_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/providertest"
	"github.com/logicspike/comms/pkg/provider/ses"
)

func TestSNSSignatureVersions(t *testing.T) {
	sns := fakeprovider.NewSNS()
	defer sns.Close()
	v, err := ses.NewSNSVerifier(fakeprovider.HostPattern, sns.Client())
	if err != nil {
		t.Fatal(err)
	}
	v.WithPort(sns.Port())
	ctx := context.Background()
	topic := "arn:aws:sns:us-east-1:123456789012:ses-events"
	for _, version := range []string{"1", "2"} {
		t.Run("v"+version, func(t *testing.T) {
			m, err := ses.ParseSNS(sns.Message("Notification", topic, fakeprovider.SESEvent("Delivery", "0100-1", "a@b.example", time.Now()), version))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(ctx, m); err != nil {
				t.Fatalf("valid v%s signature rejected: %v", version, err)
			}
			tampered := m
			tampered.Message = strings.Replace(m.Message, "Delivery", "Bounce", 1)
			if err := v.Verify(ctx, tampered); !errors.Is(err, provider.ErrUnverified) {
				t.Fatalf("tampered message accepted: %v", err)
			}
		})
	}

	m, _ := ses.ParseSNS(sns.Message("Notification", topic, "{}", "2"))
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
			if err := v.Verify(ctx, bad); !errors.Is(err, provider.ErrUnverified) {
				t.Fatalf("SigningCertURL %q accepted: %v", certURL, err)
			}
		})
	}

	// Subscription confirmations are followed only to the SNS host pattern.
	c, err := ses.ParseSNS(sns.Message("SubscriptionConfirmation", topic, "You have chosen to subscribe", "1"))
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
	def, _ := ses.NewSNSVerifier("", nil)
	if err := def.Verify(ctx, m); !errors.Is(err, provider.ErrUnverified) {
		t.Fatalf("a loopback certificate URL passed the default pattern: %v", err)
	}
	// On an SNS host, only port 443.
	onAWS := m
	onAWS.SigningCertURL = "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem"
	if err := def.Verify(ctx, onAWS); !errors.Is(err, provider.ErrUnverified) {
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
			n := ses.SNSMessage{Type: "Notification", MessageID: "sns-1", Message: fakeprovider.SESEvent(c.event, "0100-abc", "Ada@Example.com", at)}
			cb, err := ses.ParseEvent("prv_1", n)
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
	cb, err := ses.ParseEvent("prv_1", ses.SNSMessage{MessageID: "x", Message: transient})
	if err != nil || cb.Suppress != "" || cb.ErrorCode != string(provider.MailboxUnavailable) {
		t.Fatalf("a transient bounce must not suppress: %+v %v", cb, err)
	}
}

// The parsers read bodies from the internet (after verification, but a provider's bug or a
// leaked secret makes that no guarantee): they must never panic, and must either fail with
// ErrMalformed or return a callback the inbox can store.

func FuzzParseSNSAndSES(f *testing.F) {
	sns := fakeprovider.NewSNS()
	defer sns.Close()
	for _, e := range []string{"Delivery", "Bounce", "Complaint", "Open", "Click", "Reject", "DeliveryDelay", "Send"} {
		f.Add(sns.Message("Notification", "arn:aws:sns:us-east-1:123456789012:t", fakeprovider.SESEvent(e, "0100-1", "a@b.example", time.Now()), "2"))
	}
	f.Add([]byte(`{"Type":"Notification","MessageId":"1","TopicArn":"t","Timestamp":"x","Signature":"x","SigningCertURL":"x","Message":"{\"eventType\":\"Bounce\",\"mail\":{\"messageId\":\"m\"}}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ses.ParseSNS(body)
		if err != nil {
			if !errors.Is(err, provider.ErrMalformed) {
				t.Fatalf("ParseSNS error not ErrMalformed: %v", err)
			}
			return
		}
		_ = m.StringToSign()
		if m.Type != "Notification" {
			return
		}
		cb, err := ses.ParseEvent("prv_1", m)
		providertest.CheckEvent(t, cb, err)
		if err == nil && cb.OccurredAt.IsZero() {
			t.Fatal("no time")
		}
	})
}
