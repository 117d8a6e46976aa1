package resend_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/resend"
)

// Our message id is Resend's Idempotency-Key: a second attempt of the same message (after a lost
// response, say) returns the first email's id and sends nothing new.
func TestRetryOfTheSameMessageSendsOnce(t *testing.T) {
	f := fakeprovider.NewResend()
	defer f.Close()
	creds, _ := json.Marshal(resend.Credentials{APIKey: f.APIKey})
	a, err := resend.New(provider.Config{Type: resend.Type, Channel: message.Email, Credentials: creds, Sender: json.RawMessage(`{"from":"a@acme.example"}`)},
		provider.Env{ResendBaseURL: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	m := provider.Message{ID: "msg_once", To: "b@example.com", Subject: "s", Text: "t"}
	r1, err1 := a.Send(context.Background(), m)
	r2, err2 := a.Send(context.Background(), m)
	if err1 != nil || err2 != nil || r1.ProviderMessageID != r2.ProviderMessageID || len(f.Received()) != 1 {
		t.Fatalf("%v %v %v %v, received %d", r1, r2, err1, err2, len(f.Received()))
	}
	if f.Received()[0].MessageID != "msg_once" {
		t.Fatal("message id tag missing")
	}
}

func TestRetryAfterIsKept(t *testing.T) {
	f := fakeprovider.NewResend()
	defer f.Close()
	f.FailFor("slow@example.com", provider.RateLimited)
	creds, _ := json.Marshal(resend.Credentials{APIKey: f.APIKey})
	a, _ := resend.New(provider.Config{Type: resend.Type, Channel: message.Email, Credentials: creds, Sender: json.RawMessage(`{"from":"a@acme.example"}`)},
		provider.Env{ResendBaseURL: f.URL})
	_, err := a.Send(context.Background(), provider.Message{To: "slow@example.com", Subject: "s", Text: "t"})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != provider.RateLimited || pe.RetryAfter != time.Second {
		t.Fatalf("%+v", err)
	}
}
