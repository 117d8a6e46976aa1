package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/registry"
	"github.com/logicspike/comms/pkg/secrets"
)

// harness adapts one fake to the conformance suite.
type harness struct {
	typ      string
	channel  message.Channel
	cfg      provider.Config
	env      provider.Env
	secrets  []string // credential values that must never show in a mask or an error
	badCreds func(provider.Config) provider.Config
	received func() []fakeprovider.Received
	failFor  func(to string, code provider.Code)
	codes    []provider.Code // the failure classes this provider can produce
	retarget func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env)
}

func raw(v any) json.RawMessage { b, _ := json.Marshal(v); return b }

func withCreds(c provider.Config, edit func(m map[string]any)) provider.Config {
	var m map[string]any
	_ = json.Unmarshal(c.Credentials, &m)
	edit(m)
	c.Credentials = raw(m)
	return c
}

func harnesses(t *testing.T) []harness {
	all := []provider.Code{provider.AuthFailed, provider.InsufficientFunds, provider.InvalidRecipient, provider.InvalidSender,
		provider.RateLimited, provider.ProviderUnavailable, provider.ContentRejected}

	tw := fakeprovider.NewTwilio()
	t.Cleanup(tw.Close)
	ses := fakeprovider.NewSES()
	t.Cleanup(ses.Close)
	rs := fakeprovider.NewResend()
	t.Cleanup(rs.Close)
	wh := fakeprovider.NewWebhook()
	t.Cleanup(wh.Close)
	sm, err := fakeprovider.NewSMTP(fakeprovider.SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sm.Close)

	return []harness{
		{
			typ: "twilio", channel: message.SMS,
			cfg: provider.Config{ID: "prv_tw", TenantID: "ten_a", Type: "twilio", Channel: message.SMS,
				Credentials: raw(map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken}),
				Sender:      raw(map[string]any{"from": "+14155550100"})},
			env:     provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: "https://hooks.example"},
			secrets: []string{tw.AuthToken},
			badCreds: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["auth_token"] = strings.Repeat("0", 32) })
			},
			received: tw.Received, failFor: tw.FailFor, codes: all,
			retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.TwilioBaseURL = "http://" + addr
				return c, e
			},
		},
		{
			typ: "ses", channel: message.Email,
			cfg: provider.Config{ID: "prv_ses", TenantID: "ten_a", Type: "ses", Channel: message.Email,
				Credentials: raw(map[string]any{"region": ses.Region, "access_key_id": ses.AccessKeyID, "secret_access_key": ses.SecretAccessKey}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>", "configuration_set": "comms-events"})},
			env:     provider.Env{SESEndpoint: ses.URL},
			secrets: []string{ses.SecretAccessKey},
			badCreds: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["secret_access_key"] = "wrong/secret/0123456789abcdefghijkl" })
			},
			received: ses.Received, failFor: ses.FailFor, codes: all,
			retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.SESEndpoint = "http://" + addr
				return c, e
			},
		},
		{
			typ: "resend", channel: message.Email,
			cfg: provider.Config{ID: "prv_rs", TenantID: "ten_a", Type: "resend", Channel: message.Email,
				Credentials: raw(map[string]any{"api_key": rs.APIKey}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>"})},
			env:     provider.Env{ResendBaseURL: rs.URL},
			secrets: []string{rs.APIKey},
			badCreds: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["api_key"] = "re_wrong_key_123456" })
			},
			received: rs.Received, failFor: rs.FailFor, codes: all,
			retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.ResendBaseURL = "http://" + addr
				return c, e
			},
		},
		{
			typ: "webhook", channel: message.SMS,
			cfg: provider.Config{ID: "prv_wh", TenantID: "ten_a", Type: "webhook", Channel: message.SMS,
				Credentials: raw(map[string]any{"url": wh.URL + "/comms", "secret": wh.Secret})},
			env:     provider.Env{AllowInsecure: true},
			secrets: []string{wh.Secret, strings.TrimPrefix(wh.Secret, "whsec_")},
			badCreds: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["secret"] = "whsec_" + strings.Repeat("QUFB", 8) })
			},
			received: wh.Received, failFor: wh.FailFor,
			codes: []provider.Code{provider.AuthFailed, provider.RateLimited, provider.ProviderUnavailable, provider.ContentRejected, provider.Timeout},
			retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				return withCreds(c, func(m map[string]any) { m["url"] = "http://" + addr + "/comms" }), e
			},
		},
		{
			typ: "smtp", channel: message.Email,
			cfg: provider.Config{ID: "prv_smtp", TenantID: "ten_a", Type: "smtp", Channel: message.Email,
				Credentials: raw(map[string]any{"host": sm.Host, "port": sm.Port, "username": sm.Username, "password": sm.Password, "tls": "starttls"}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>"})},
			env:     provider.Env{RootCAs: sm.RootCAs},
			secrets: []string{sm.Password},
			badCreds: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["password"] = "wrong-password" })
			},
			received: sm.Received, failFor: sm.FailFor,
			codes: []provider.Code{provider.InvalidRecipient, provider.InvalidSender, provider.RateLimited,
				provider.ProviderUnavailable, provider.ContentRejected},
			retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				host, port, _ := net.SplitHostPort(addr)
				p, _ := strconv.Atoi(port)
				return withCreds(c, func(m map[string]any) { m["host"], m["port"] = host, p }), e
			},
		},
	}
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

func build(t *testing.T, c provider.Config, e provider.Env) registry.Adapter {
	t.Helper()
	ring, _ := secrets.ParseRing("v1:" + strings.Repeat("A", 43) + "=")
	a, err := registry.New(ring, e, nil).Build(c)
	if err != nil {
		t.Fatalf("build %s: %v", c.Type, err)
	}
	return a
}

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// TestAdapterConformance holds every adapter to the same contract, through its real client
// library against a fake speaking the provider's wire format.
func TestAdapterConformance(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.typ, func(t *testing.T) {
			ctx := context.Background()
			t.Run("sends and returns the provider's id", func(t *testing.T) {
				a := build(t, h.cfg, h.env)
				before := len(h.received())
				m := testMessage(h.channel, recipient(h.channel, 1))
				res, err := a.Send(ctx, m)
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				got := h.received()
				if len(got) != before+1 {
					t.Fatalf("fake received %d messages, want %d", len(got)-before, 1)
				}
				r := got[len(got)-1]
				if r.To != m.To || res.ProviderMessageID == "" || res.ProviderMessageID != r.ProviderMessageID {
					t.Fatalf("received %+v, result %+v", r, res)
				}
				if !strings.Contains(r.Text, "123456") || (h.channel == message.Email && (r.Subject != m.Subject || !strings.Contains(r.HTML, "<b>123456</b>"))) {
					t.Fatalf("content changed on the way: %+v", r)
				}
			})
			t.Run("wrong credentials are auth_failed and permanent", func(t *testing.T) {
				a := build(t, h.badCreds(h.cfg), h.env)
				before := len(h.received())
				_, err := a.Send(ctx, testMessage(h.channel, recipient(h.channel, 2)))
				assertFailure(t, err, provider.AuthFailed, h.secrets)
				if len(h.received()) != before {
					t.Fatal("a message was accepted with wrong credentials")
				}
			})
			for i, code := range h.codes {
				t.Run("classifies "+string(code), func(t *testing.T) {
					to := recipient(h.channel, 100+i)
					h.failFor(to, code)
					_, err := build(t, h.cfg, h.env).Send(ctx, testMessage(h.channel, to))
					assertFailure(t, err, code, h.secrets)
				})
			}
			t.Run("an unanswered request times out at the deadline", func(t *testing.T) {
				c, e := h.retarget(h.cfg, h.env, blackhole(t))
				ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				_, err := build(t, c, e).Send(ctx, testMessage(h.channel, recipient(h.channel, 3)))
				assertFailure(t, err, provider.Timeout, h.secrets)
			})
			t.Run("nothing listening is provider_unavailable", func(t *testing.T) {
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				addr := ln.Addr().String()
				ln.Close()
				c, e := h.retarget(h.cfg, h.env, addr)
				_, err := build(t, c, e).Send(ctx, testMessage(h.channel, recipient(h.channel, 4)))
				assertFailure(t, err, provider.ProviderUnavailable, h.secrets)
			})
			t.Run("missing and unknown fields are each named", func(t *testing.T) {
				c := h.cfg
				c.Credentials = raw(map[string]any{"surprise": 1})
				ring, _ := secrets.ParseRing("v1:" + strings.Repeat("A", 43) + "=")
				_, err := registry.New(ring, h.env, nil).Build(c)
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
				mask := build(t, h.cfg, h.env).Mask()
				if mask == "" {
					t.Fatal("empty mask")
				}
				for _, s := range h.secrets {
					if strings.Contains(mask, s) || strings.Contains(mask, s[:8]) {
						t.Fatalf("mask %q reveals a secret", mask)
					}
				}
			})
		})
	}
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
