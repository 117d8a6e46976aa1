package resend_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/providertest"
	"github.com/logicspike/comms/pkg/provider/resend"
)

// The example Svix publishes for its verification libraries (also Standard Webhooks' example).

func TestResendSignaturePublishedExample(t *testing.T) {
	h := http.Header{}
	h.Set("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("svix-timestamp", "1614265330")
	h.Set("svix-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	at := time.Unix(1614265330, 0)
	if err := resend.VerifySignature(secret, h, body, at.Add(time.Minute)); err != nil {
		t.Fatalf("published example rejected: %v", err)
	}
	if err := resend.VerifySignature(secret, h, body, at.Add(6*time.Minute)); !errors.Is(err, provider.ErrUnverified) {
		t.Fatalf("a signature outside the 5 minute tolerance was accepted: %v", err)
	}
	if err := resend.VerifySignature(secret, h, []byte(`{"test": 2432232315}`), at); !errors.Is(err, provider.ErrUnverified) {
		t.Fatalf("a tampered body was accepted: %v", err)
	}
	// Svix rotates secrets by sending several signatures; any one matching is enough.
	h.Set("svix-signature", "v1,bm90IHRoaXMgb25l v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	if err := resend.VerifySignature(secret, h, body, at); err != nil {
		t.Fatalf("second of two signatures not accepted: %v", err)
	}
}

func TestParseResendEvents(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for typ, want := range map[string]message.Status{
		"email.sent": message.Sent, "email.delivered": message.Delivered, "email.bounced": message.Bounced,
		"email.complained": message.Complained, "email.opened": message.Opened, "email.clicked": message.Clicked,
		"email.delivery_delayed": message.Delayed,
	} {
		cb, err := resend.ParseEvent("prv_1", "msg_1", fakeprovider.ResendEvent(typ, "4ef9-1", "a@b.example", at))
		if err != nil || cb.Status != want || !cb.OccurredAt.Equal(at) || cb.ProviderMessageID != "4ef9-1" {
			t.Fatalf("%s: %+v %v", typ, cb, err)
		}
	}
	if _, err := resend.ParseEvent("prv_1", "msg_1", []byte(`{"type":"contact.created","created_at":"2026-11-22T10:00:00Z","data":{"email_id":"x"}}`)); !errors.Is(err, provider.ErrMalformed) {
		t.Fatalf("a non-email event was accepted: %v", err)
	}
}

// The parsers read bodies from the internet (after verification, but a provider's bug or a
// leaked secret makes that no guarantee): they must never panic, and must either fail with
// ErrMalformed or return a callback the inbox can store.

func FuzzParseResend(f *testing.F) {
	for _, typ := range []string{"email.delivered", "email.bounced", "email.clicked", "email.complained"} {
		f.Add(fakeprovider.ResendEvent(typ, "4ef9-1", "a@b.example", time.Now()))
	}
	f.Add([]byte(`{"type":"email.failed","created_at":"2026-11-22T10:00:00Z","data":{"email_id":"x","failed":{"reason":"r"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := resend.ParseEvent("prv_1", "msg_1", body)
		providertest.CheckEvent(t, cb, err)
	})
}
