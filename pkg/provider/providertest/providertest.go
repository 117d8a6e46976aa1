// Package providertest is the contract every provider adapter is held to, as a suite an adapter's
// tests run against a local fake speaking the provider's wire format: it sends and returns the
// provider's id, refuses wrong credentials as auth_failed, classifies each failure the provider
// can produce, times out at the deadline, reports an unreachable provider as unavailable, names
// every missing and unknown config field, and never shows a secret in a mask or an error.
package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Received is what the fake says it accepted.
type Received struct {
	To, From, Subject, Text, HTML string
	ProviderMessageID             string
}

// Harness adapts one provider's fake to the suite.
type Harness struct {
	Channel message.Channel
	Config  provider.Config // a working config against the fake
	Env     provider.Env
	// Secrets are credential values that must never show in a mask or an error.
	Secrets []string
	// BadCredentials returns cfg with credentials the fake refuses.
	BadCredentials func(cfg provider.Config) provider.Config
	// Received lists what the fake accepted so far.
	Received func() []Received
	// FailFor makes the fake fail every send to recipient with code, in the provider's own words.
	FailFor func(recipient string, code provider.Code)
	// Codes are the failure classes this provider can produce.
	Codes []provider.Code
	// Retarget points cfg and env at addr instead of the fake.
	Retarget func(cfg provider.Config, env provider.Env, addr string) (provider.Config, provider.Env)
	// Device, for a push provider, makes the fake's i-th device: the token (or Web Push
	// endpoint) a message is sent to, and the rest of the device.
	Device func(i int) (to string, d *provider.Device)
	// BadCredentialsCode is how the provider refuses BadCredentials, when not as auth_failed: a
	// Web Push service refuses another key than the browser subscribed with for that device.
	BadCredentialsCode provider.Code
}

// Run holds the adapter h describes to the contract.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	t.Run("sends and returns the provider's id", func(t *testing.T) {
		a := build(t, h.Config, h.Env)
		before := len(h.Received())
		m := h.message(1)
		res, err := a.Send(ctx, m)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		got := h.Received()
		if len(got) != before+1 {
			t.Fatalf("fake received %d messages, want %d", len(got)-before, 1)
		}
		r := got[len(got)-1]
		if r.To != m.To || res.ProviderMessageID == "" || res.ProviderMessageID != r.ProviderMessageID {
			t.Fatalf("received %+v, result %+v", r, res)
		}
		if !strings.Contains(r.Text, "123456") || (h.Channel == message.Email && (r.Subject != m.Subject || !strings.Contains(r.HTML, "<b>123456</b>"))) {
			t.Fatalf("content changed on the way: %+v", r)
		}
	})
	t.Run("a message's own from is its sender", func(t *testing.T) {
		if h.Channel == message.Push {
			t.Skip("a push notification has no sender")
		}
		m := testMessage(h.Channel, recipient(h.Channel, 5))
		want := "other@acme.example"
		m.ID, m.From = m.ID+"_from", "Other Team <other@acme.example>" // another message: providers deduplicate by id
		if h.Channel == message.SMS {
			m.From, want = "+14155550123", "+14155550123"
		}
		before := len(h.Received())
		if _, err := build(t, h.Config, h.Env).Send(ctx, m); err != nil {
			t.Fatalf("send: %v", err)
		}
		got := h.Received()
		if len(got) != before+1 || !strings.Contains(got[len(got)-1].From, want) {
			t.Fatalf("sent from %+v, want %s", got[before:], want)
		}
	})
	t.Run("wrong credentials are auth_failed and permanent", func(t *testing.T) {
		a := build(t, h.BadCredentials(h.Config), h.Env)
		before := len(h.Received())
		_, err := a.Send(ctx, h.message(2))
		want := provider.AuthFailed
		if h.BadCredentialsCode != "" {
			want = h.BadCredentialsCode
		}
		assertFailure(t, err, want, h.Secrets)
		if len(h.Received()) != before {
			t.Fatal("a message was accepted with wrong credentials")
		}
	})
	for i, code := range h.Codes {
		t.Run("classifies "+string(code), func(t *testing.T) {
			m := h.message(100 + i)
			h.FailFor(m.To, code)
			_, err := build(t, h.Config, h.Env).Send(ctx, m)
			assertFailure(t, err, code, h.Secrets)
		})
	}
	t.Run("an unanswered request times out at the deadline", func(t *testing.T) {
		c, e := h.Retarget(h.Config, h.Env, blackhole(t))
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := build(t, c, e).Send(ctx, h.message(3))
		assertFailure(t, err, provider.Timeout, h.Secrets)
	})
	t.Run("nothing listening is provider_unavailable", func(t *testing.T) {
		ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c, e := h.Retarget(h.Config, h.Env, addr)
		_, err = build(t, c, e).Send(ctx, h.message(4))
		assertFailure(t, err, provider.ProviderUnavailable, h.Secrets)
	})
	t.Run("missing and unknown fields are each named", func(t *testing.T) {
		c := h.Config
		c.Credentials = json.RawMessage(`{"surprise":1}`)
		_, err := registration(t, c.Type).New(c, h.Env)
		var verr *message.ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("want a validation error, got %v", err)
		}
		fields := map[string]bool{}
		for _, f := range verr.Fields {
			fields[f.Field] = true
		}
		if !fields["credentials.surprise"] || len(fields) < 2 {
			t.Fatalf("fields %v: want credentials.surprise and each missing credential", fields)
		}
	})
	t.Run("the mask reveals no secret", func(t *testing.T) {
		mask := build(t, h.Config, h.Env).Mask()
		if mask == "" {
			t.Fatal("empty mask")
		}
		for _, s := range h.Secrets {
			if strings.Contains(mask, s) || strings.Contains(mask, s[:min(8, len(s))]) {
				t.Fatalf("mask %q reveals a secret", mask)
			}
		}
	})
}

// message is the i-th test message: to the i-th recipient, or to the fake's i-th device.
func (h Harness) message(i int) provider.Message {
	if h.Channel != message.Push {
		return testMessage(h.Channel, recipient(h.Channel, i))
	}
	to, d := h.Device(i)
	m := testMessage(h.Channel, to)
	m.Device, m.Push = d, &message.PushContent{Title: "Sign-in code", Body: m.Text}
	return m
}

func recipient(ch message.Channel, i int) string {
	if ch == message.SMS {
		return "+1415555" + strconv.Itoa(1000+i)
	}
	return "user" + strconv.Itoa(i) + "@example.com"
}

func testMessage(ch message.Channel, to string) provider.Message {
	m := provider.Message{ID: "msg_conformance" + strconv.Itoa(len(to)), TenantID: "ten_a", Channel: ch, To: to, Text: "Your code is 123456"}
	if ch == message.Email {
		m.Subject, m.HTML = "Grüße — your code", "<p>Your code is <b>123456</b></p>"
	}
	return m
}

func registration(t *testing.T, typ string) provider.Registration {
	t.Helper()
	r, ok := provider.Lookup(typ)
	if !ok || r.New == nil {
		t.Fatalf("provider type %q is not registered: import its package (or pkg/provider/all)", typ)
	}
	return r
}

func build(t *testing.T, c provider.Config, e provider.Env) provider.Adapter {
	t.Helper()
	a, err := registration(t, c.Type).New(c, e)
	if err != nil {
		t.Fatalf("build %s: %v", c.Type, err)
	}
	return a
}

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return ln.Addr().String()
}

func assertFailure(t *testing.T, err error, want provider.Code, secrets []string) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a *provider.Error with %s, got %v", want, err)
	}
	if pe.Code != want {
		t.Fatalf("code %s, want %s (%v)", pe.Code, want, pe)
	}
	if pe.Permanent == want.Transient() {
		t.Fatalf("%s: permanent=%v", want, pe.Permanent)
	}
	if pe.Message == "" {
		t.Fatalf("%s: the provider's message was dropped", want)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) || strings.Contains(pe.Describe(), s) {
			t.Fatalf("error text reveals a secret: %v", err)
		}
	}
}
