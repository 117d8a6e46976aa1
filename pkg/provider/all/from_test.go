package all_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// A message's own from (docs/providers.md#from): an email config sends from addresses on its own
// from's domain and on the domains it lists as verified, exactly (a subdomain is verified on its
// own); a Twilio config, from its number and the other senders it lists; a custom webhook, from
// whatever the message names, since the tenant's endpoint decides. No from at all is always
// allowed: the config's sender is used.
func TestEachTypeSaysWhichFromItMaySendFrom(t *testing.T) {
	email := `{"from": "Acme <noreply@acme.example>", "domains": ["mail.acme.example", "Brand.Example"]}`
	cases := []struct {
		typ, sender, from string
		want              bool
	}{
		{"ses", email, "", true},
		{"ses", email, "billing@acme.example", true},
		{"ses", email, "Billing <billing@ACME.example>", true},
		{"ses", email, "news@mail.acme.example", true},
		{"ses", email, "hello@brand.example", true},
		{"ses", email, "x@other.example", false},
		{"ses", email, "x@sub.brand.example", false},
		{"ses", email, "x@acme.example.evil.example", false},
		{"ses", email, "not an address", false},
		{"smtp", email, "news@mail.acme.example", true},
		{"smtp", email, "x@other.example", false},
		{"resend", email, "billing@acme.example", true},
		{"resend", `{"from": "noreply@acme.example"}`, "x@mail.acme.example", false},
		{"twilio", `{"from": "+14155550001", "senders": ["+14155550123", "Acme"]}`, "+14155550001", true},
		{"twilio", `{"from": "+14155550001", "senders": ["+14155550123", "Acme"]}`, "+14155550123", true},
		{"twilio", `{"from": "+14155550001", "senders": ["+14155550123", "Acme"]}`, "Acme", true},
		{"twilio", `{"from": "+14155550001", "senders": ["+14155550123", "Acme"]}`, "+14155550999", false},
		{"twilio", `{"messaging_service_sid": "MG0123456789abcdef0123456789abcdef"}`, "+14155550001", false},
		{"webhook", `{}`, "anyone@anywhere.example", true},
	}
	for _, c := range cases {
		if got := provider.AllowsFrom(c.typ, json.RawMessage(c.sender), c.from); got != c.want {
			t.Errorf("%s %s: from %q allowed = %v, want %v", c.typ, c.sender, c.from, got, c.want)
		}
	}
}

// The lists a message's from is checked against are validated when a config is saved, naming the
// entry.
func TestSenderListsAreValidated(t *testing.T) {
	for _, c := range []struct{ typ, creds, sender, field string }{
		{"ses", `{"region":"us-east-1","access_key_id":"AKIAABCDEFGHIJKL","secret_access_key":"0123456789abcdef0123"}`,
			`{"from":"a@acme.example","domains":["acme.example","not a domain"]}`, "sender.domains[1]"},
		{"smtp", `{"host":"smtp.acme.example","tls":"starttls"}`, `{"from":"a@acme.example","domains":["@acme.example"]}`, "sender.domains[0]"},
		{"twilio", `{"account_sid":"AC0123456789abcdef0123456789abcdef","auth_token":"0123456789abcdef0123456789abcdef"}`,
			`{"from":"+14155550001","senders":["+1 415 555"]}`, "sender.senders[0]"},
	} {
		r, _ := provider.Lookup(c.typ)
		_, err := r.New(provider.Config{ID: "prv_x", Type: c.typ, Channel: r.Channels[0], Credentials: json.RawMessage(c.creds), Sender: json.RawMessage(c.sender)}, provider.Env{})
		if err == nil || !containsField(err, c.field) {
			t.Errorf("%s %s: %v; want an error naming %s", c.typ, c.sender, err, c.field)
		}
	}
}

func containsField(err error, field string) bool {
	var verr *message.ValidationError
	if !errors.As(err, &verr) {
		return false
	}
	for _, f := range verr.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}
