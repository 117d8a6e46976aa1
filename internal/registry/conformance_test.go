package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/providertest"
	"github.com/logicspike/comms/pkg/webpush"
)

// received turns a fake's log into what the suite reads.
func received(log func() []fakeprovider.Received) func() []providertest.Received {
	return func() []providertest.Received {
		var out []providertest.Received
		for _, r := range log() {
			out = append(out, providertest.Received{To: r.To, From: r.From, Subject: r.Subject, Text: r.Text, HTML: r.HTML, ProviderMessageID: r.ProviderMessageID})
		}
		return out
	}
}

func raw(v any) json.RawMessage { b, _ := json.Marshal(v); return b }

func withCreds(c provider.Config, edit func(m map[string]any)) provider.Config {
	var m map[string]any
	_ = json.Unmarshal(c.Credentials, &m)
	edit(m)
	c.Credentials = raw(m)
	return c
}

func harnesses(t *testing.T) map[string]providertest.Harness {
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
	wp := fakeprovider.NewWebPush()
	t.Cleanup(wp.Close)
	vapidPublic, vapidPrivate, err := webpush.GenerateVAPID()
	if err != nil {
		t.Fatal(err)
	}
	subs := map[int]fakeprovider.Subscription{}
	fc := fakeprovider.NewFCM()
	t.Cleanup(fc.Close)
	unknownKey := fakeprovider.UnknownRSAKey()
	ap := fakeprovider.NewAPNs()
	t.Cleanup(ap.Close)
	p8 := ap.P8(nil)
	account := fc.ServiceAccount(nil)
	var keyFile struct {
		PrivateKey string `json:"private_key"`
	}
	_ = json.Unmarshal([]byte(account), &keyFile)
	sm, err := fakeprovider.NewSMTP(fakeprovider.SMTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sm.Close)

	return map[string]providertest.Harness{
		"twilio": {
			Channel: message.SMS,
			Config: provider.Config{ID: "prv_tw", TenantID: "ten_a", Type: "twilio", Channel: message.SMS,
				Credentials: raw(map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken}),
				Sender:      raw(map[string]any{"from": "+14155550100"})},
			Env:     provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: "https://hooks.example"},
			Secrets: []string{tw.AuthToken},
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["auth_token"] = strings.Repeat("0", 32) })
			},
			Received: received(tw.Received), FailFor: tw.FailFor, Codes: all,
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.TwilioBaseURL = "http://" + addr
				return c, e
			},
		},
		"ses": {
			Channel: message.Email,
			Config: provider.Config{ID: "prv_ses", TenantID: "ten_a", Type: "ses", Channel: message.Email,
				Credentials: raw(map[string]any{"region": ses.Region, "access_key_id": ses.AccessKeyID, "secret_access_key": ses.SecretAccessKey}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>", "configuration_set": "comms-events"})},
			Env:     provider.Env{SESEndpoint: ses.URL},
			Secrets: []string{ses.SecretAccessKey},
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["secret_access_key"] = "wrong/secret/0123456789abcdefghijkl" })
			},
			Received: received(ses.Received), FailFor: ses.FailFor, Codes: all,
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.SESEndpoint = "http://" + addr
				return c, e
			},
		},
		"resend": {
			Channel: message.Email,
			Config: provider.Config{ID: "prv_rs", TenantID: "ten_a", Type: "resend", Channel: message.Email,
				Credentials: raw(map[string]any{"api_key": rs.APIKey}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>"})},
			Env:     provider.Env{ResendBaseURL: rs.URL},
			Secrets: []string{rs.APIKey},
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["api_key"] = "re_wrong_key_123456" })
			},
			Received: received(rs.Received), FailFor: rs.FailFor, Codes: all,
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.ResendBaseURL = "http://" + addr
				return c, e
			},
		},
		"webhook": {
			Channel: message.SMS,
			Config: provider.Config{ID: "prv_wh", TenantID: "ten_a", Type: "webhook", Channel: message.SMS,
				Credentials: raw(map[string]any{"url": wh.URL + "/comms", "secret": wh.Secret})},
			Env:     provider.Env{AllowInsecure: true},
			Secrets: []string{wh.Secret, strings.TrimPrefix(wh.Secret, "whsec_")},
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["secret"] = "whsec_" + strings.Repeat("QUFB", 8) })
			},
			Received: received(wh.Received), FailFor: wh.FailFor,
			Codes: []provider.Code{provider.AuthFailed, provider.RateLimited, provider.ProviderUnavailable, provider.ContentRejected, provider.Timeout},
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				return withCreds(c, func(m map[string]any) { m["url"] = "http://" + addr + "/comms" }), e
			},
		},
		"apns": {
			Channel: message.Push,
			Config: provider.Config{ID: "prv_apns", TenantID: "ten_a", Type: "apns", Channel: message.Push,
				Credentials: raw(map[string]any{"key_id": ap.KeyID, "team_id": ap.TeamID, "private_key": p8}),
				Sender:      raw(map[string]any{"topic": ap.Topic})},
			Env:     provider.Env{APNsBaseURL: ap.URL, RootCAs: ap.RootCAs()},
			Secrets: []string{strings.Split(p8, "\n")[1]},
			BadCredentials: func(c provider.Config) provider.Config {
				other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				return withCreds(c, func(m map[string]any) { m["private_key"] = ap.P8(other) })
			},
			Device:   func(i int) (string, *provider.Device) { return fmt.Sprintf("%064x", i), nil },
			Received: received(ap.Received), FailFor: ap.FailFor,
			Codes: []provider.Code{provider.AuthFailed, provider.InvalidRecipient, provider.InvalidSender, provider.RateLimited,
				provider.ProviderUnavailable, provider.ContentRejected},
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.APNsBaseURL = "https://" + addr
				return c, e
			},
		},
		"fcm": {
			Channel: message.Push,
			Config: provider.Config{ID: "prv_fcm", TenantID: "ten_a", Type: "fcm", Channel: message.Push,
				Credentials: raw(map[string]any{"service_account": account})},
			Env:     provider.Env{FCMBaseURL: fc.URL, FCMTokenURL: fc.URL + "/token"},
			Secrets: []string{strings.Split(keyFile.PrivateKey, "\n")[1]}, // a line of the key's base64
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["service_account"] = fc.ServiceAccount(unknownKey) })
			},
			Device:   func(i int) (string, *provider.Device) { return "fcm-token-" + strconv.Itoa(i), nil },
			Received: received(fc.Received), FailFor: fc.FailFor,
			Codes: []provider.Code{provider.AuthFailed, provider.InvalidRecipient, provider.RateLimited,
				provider.ProviderUnavailable, provider.ContentRejected},
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.FCMBaseURL = "http://" + addr
				return c, e
			},
		},
		"webpush": {
			Channel: message.Push,
			Config: provider.Config{ID: "prv_wp", TenantID: "ten_a", Type: "webpush", Channel: message.Push,
				Credentials: raw(map[string]any{"subject": "mailto:ops@acme.example", "public_key": vapidPublic, "private_key": vapidPrivate})},
			Env:     provider.Env{AllowInsecure: true},
			Secrets: []string{vapidPrivate},
			// Another key than the browsers subscribed with: each push service refuses it for that
			// subscription.
			BadCredentials: func(c provider.Config) provider.Config {
				pub, priv, _ := webpush.GenerateVAPID()
				return withCreds(c, func(m map[string]any) { m["public_key"], m["private_key"] = pub, priv })
			},
			BadCredentialsCode: provider.InvalidRecipient,
			Device: func(i int) (string, *provider.Device) {
				sub, ok := subs[i]
				if !ok {
					sub = wp.Subscribe(vapidPublic)
					subs[i] = sub
				}
				return sub.Endpoint, &provider.Device{P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}
			},
			Received: received(wp.Received), FailFor: wp.FailFor,
			Codes: []provider.Code{provider.AuthFailed, provider.InvalidRecipient, provider.RateLimited,
				provider.ProviderUnavailable, provider.ContentRejected},
			// The endpoint is the device's: every connection goes to addr instead.
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				e.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
				return c, e
			},
		},
		"smtp": {
			Channel: message.Email,
			Config: provider.Config{ID: "prv_smtp", TenantID: "ten_a", Type: "smtp", Channel: message.Email,
				Credentials: raw(map[string]any{"host": sm.Host, "port": sm.Port, "username": sm.Username, "password": sm.Password, "tls": "starttls"}),
				Sender:      raw(map[string]any{"from": "Acme <noreply@acme.example>"})},
			Env:     provider.Env{RootCAs: sm.RootCAs},
			Secrets: []string{sm.Password},
			BadCredentials: func(c provider.Config) provider.Config {
				return withCreds(c, func(m map[string]any) { m["password"] = "wrong-password" })
			},
			Received: received(sm.Received), FailFor: sm.FailFor,
			Codes: []provider.Code{provider.InvalidRecipient, provider.InvalidSender, provider.RateLimited,
				provider.ProviderUnavailable, provider.ContentRejected},
			Retarget: func(c provider.Config, e provider.Env, addr string) (provider.Config, provider.Env) {
				host, port, _ := net.SplitHostPort(addr)
				p, _ := strconv.Atoi(port)
				return withCreds(c, func(m map[string]any) { m["host"], m["port"] = host, p }), e
			},
		},
	}
}

// TestAdapterConformance holds every adapter to the same contract (providertest), through its
// real client library against a fake speaking the provider's wire format.
func TestAdapterConformance(t *testing.T) {
	hs := harnesses(t)
	for _, typ := range registry.Types() {
		h, ok := hs[typ]
		if !ok {
			t.Errorf("%s is registered but has no harness in harnesses", typ)
			continue
		}
		t.Run(typ, func(t *testing.T) { providertest.Run(t, h) })
	}
}
