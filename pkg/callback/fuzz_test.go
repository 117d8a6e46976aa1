package callback_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/fakeprovider"
	"github.com/logicspike/comms/pkg/callback"
)

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
		cb, err := callback.ParseTwilio("prv_1", form, time.Now())
		checkParsed(t, cb.EventKey, cb.ProviderMessageID, cb.Payload, err)
	})
}

func FuzzParseSNSAndSES(f *testing.F) {
	sns := fakeprovider.NewSNS()
	defer sns.Close()
	for _, e := range []string{"Delivery", "Bounce", "Complaint", "Open", "Click", "Reject", "DeliveryDelay", "Send"} {
		f.Add(sns.Message("Notification", "arn:aws:sns:us-east-1:123456789012:t", fakeprovider.SESEvent(e, "0100-1", "a@b.example", time.Now()), "2"))
	}
	f.Add([]byte(`{"Type":"Notification","MessageId":"1","TopicArn":"t","Timestamp":"x","Signature":"x","SigningCertURL":"x","Message":"{\"eventType\":\"Bounce\",\"mail\":{\"messageId\":\"m\"}}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := callback.ParseSNS(body)
		if err != nil {
			if !errors.Is(err, callback.ErrMalformed) {
				t.Fatalf("ParseSNS error not ErrMalformed: %v", err)
			}
			return
		}
		_ = m.StringToSign()
		if m.Type != "Notification" {
			return
		}
		cb, err := callback.ParseSES("prv_1", m)
		checkParsed(t, cb.EventKey, cb.ProviderMessageID, cb.Payload, err)
		if err == nil && cb.OccurredAt.IsZero() {
			t.Fatal("no time")
		}
	})
}

func FuzzParseResend(f *testing.F) {
	for _, typ := range []string{"email.delivered", "email.bounced", "email.clicked", "email.complained"} {
		f.Add(fakeprovider.ResendEvent(typ, "4ef9-1", "a@b.example", time.Now()))
	}
	f.Add([]byte(`{"type":"email.failed","created_at":"2026-11-22T10:00:00Z","data":{"email_id":"x","failed":{"reason":"r"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := callback.ParseResend("prv_1", "msg_1", body)
		checkParsed(t, cb.EventKey, cb.ProviderMessageID, cb.Payload, err)
	})
}

func checkParsed(t *testing.T, key, pmid string, payload []byte, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, callback.ErrMalformed) {
			t.Fatalf("parse error not ErrMalformed: %v", err)
		}
		return
	}
	if key == "" || pmid == "" || len(pmid) > 128 || len(payload) == 0 {
		t.Fatalf("accepted a callback the inbox cannot key: key %q pmid %q", key, pmid)
	}
}
