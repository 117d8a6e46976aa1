package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webhook"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the Standard Webhooks documentation's example format

// The signature is checked here by an independent implementation of the Standard Webhooks
// scheme, written from the specification, not by the package's own Verify.
func TestDeliveryIsSignedPerStandardWebhooks(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r.Header.Clone(), must(io.ReadAll(r.Body))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"their-id-1"}`))
	}))
	defer srv.Close()
	creds, _ := json.Marshal(webhook.Credentials{URL: srv.URL + "/hook", Secret: secret})
	a, err := webhook.New(provider.Config{Type: webhook.Type, Channel: message.SMS, Credentials: creds}, provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Send(context.Background(), provider.Message{ID: "msg_1", TenantID: "ten_1", Channel: message.SMS, To: "+14155550100", Text: "hi"})
	if err != nil || res.ProviderMessageID != "their-id-1" {
		t.Fatalf("%+v %v", res, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(got.Get("webhook-id") + "." + got.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got.Get("webhook-id") != "msg_1" || got.Get("webhook-signature") != want {
		t.Fatalf("headers %v, want signature %s", got, want)
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Type != "message.send" || p.Data.To != "+14155550100" || p.Data.TenantID != "ten_1" {
		t.Fatalf("payload %s", body)
	}
	// Our Verify agrees, and refuses a tampered body and a stale timestamp.
	if err := webhook.Verify(key, got, body, time.Now(), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if webhook.Verify(key, got, append(body, ' '), time.Now(), 5*time.Minute) == nil {
		t.Fatal("tampered body verified")
	}
	if webhook.Verify(key, got, body, time.Now().Add(10*time.Minute), 5*time.Minute) == nil {
		t.Fatal("stale timestamp verified")
	}
}

// A redirect is an answer, not something to follow: following it could reach an internal
// address the dial guard never saw requested.
func TestRedirectsAreNotFollowed(t *testing.T) {
	followed := false
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer internal.Close()
	srv := httptest.NewServer(http.RedirectHandler(internal.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	creds, _ := json.Marshal(webhook.Credentials{URL: srv.URL, Secret: secret})
	a, err := webhook.New(provider.Config{Type: webhook.Type, Channel: message.Email, Credentials: creds}, provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Send(context.Background(), provider.Message{To: "a@example.com", Subject: "s", Text: "t"})
	var pe *provider.Error
	if !errors.As(err, &pe) || !pe.Permanent || followed {
		t.Fatalf("redirect: %v, followed %v", err, followed)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
