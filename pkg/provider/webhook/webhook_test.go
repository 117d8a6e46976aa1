package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webhook"
	"github.com/logicspike/comms/pkg/standardwebhooks"
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
	if err := standardwebhooks.Verify(key, got, body, time.Now(), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if standardwebhooks.Verify(key, got, append(body, ' '), time.Now(), 5*time.Minute) == nil {
		t.Fatal("tampered body verified")
	}
	if standardwebhooks.Verify(key, got, body, time.Now().Add(10*time.Minute), 5*time.Minute) == nil {
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

// A burst of concurrent sends leaves its connections open for the next burst: a worker sending
// hundreds at once to one endpoint must not dial them all again each time (Go's default
// transport keeps two idle connections per host).
func TestBurstsReuseTheirConnections(t *testing.T) {
	const burst = 64
	var dialled atomic.Int64
	arrived := make(chan struct{}, burst)
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	creds, _ := json.Marshal(webhook.Credentials{URL: srv.URL + "/hook", Secret: secret})
	a, err := webhook.New(provider.Config{Type: webhook.Type, Channel: message.SMS, Credentials: creds}, provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	sendBurst := func() {
		var wg sync.WaitGroup
		for i := range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := a.Send(context.Background(), provider.Message{ID: fmt.Sprint("msg_", i), Channel: message.SMS, To: "+14155550100", Text: "hi"}); err != nil {
					t.Error(err)
				}
			}()
		}
		for range burst { // every send holds its own connection at once
			<-arrived
		}
		for range burst {
			release <- struct{}{}
		}
		wg.Wait()
	}
	sendBurst()
	first := dialled.Load()
	sendBurst()
	// A connection goes back to the pool just after its response is read; the few that lose that
	// race against the next burst's requests are dialled again.
	if again := dialled.Load() - first; first != burst || again > 2 {
		t.Fatalf("first burst dialled %d connections, the second %d more; want %d, then none", first, again, burst)
	}
}
