package worker

import (
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

func TestPrice(t *testing.T) {
	sms := func(segments int) *store.Claimed {
		c := &store.Claimed{}
		c.Channel = message.SMS
		if segments > 0 {
			c.SMS = &message.SMSSize{Segments: segments}
		}
		return c
	}
	email := &store.Claimed{}
	email.Channel = message.Email
	priced := domain.ProviderConfig{UnitPrice: "0.0079", UnitCurrency: "USD"}
	for _, tc := range []struct {
		name               string
		c                  *store.Claimed
		cfg                domain.ProviderConfig
		reported, currency string
		want               [3]string
	}{
		{"the provider's price wins", sms(3), priced, "-0.02370", "USD", [3]string{"-0.02370", "USD", "provider"}},
		{"unit price per segment", sms(3), priced, "", "", [3]string{"0.0237", "USD", "unit_price"}},
		{"an SMS of unknown size is one segment", sms(0), priced, "", "", [3]string{"0.0079", "USD", "unit_price"}},
		{"an email is one unit", email, domain.ProviderConfig{UnitPrice: "0.0001", UnitCurrency: "EUR"}, "", "", [3]string{"0.0001", "EUR", "unit_price"}},
		{"a whole price keeps no decimals", sms(2), domain.ProviderConfig{UnitPrice: "5", UnitCurrency: "JPY"}, "", "", [3]string{"10", "JPY", "unit_price"}},
		{"trailing zeros are kept, as numeric does", sms(2), domain.ProviderConfig{UnitPrice: "0.0100", UnitCurrency: "USD"}, "", "", [3]string{"0.0200", "USD", "unit_price"}},
		{"no price known", sms(2), domain.ProviderConfig{}, "", "", [3]string{"", "", ""}},
		{"an unreadable unit price prices nothing", sms(2), domain.ProviderConfig{UnitPrice: "cheap"}, "", "", [3]string{"", "", ""}},
	} {
		cost, cur, src := price(tc.c, tc.cfg, tc.reported, tc.currency)
		if got := [3]string{cost, cur, src}; got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEventOf(t *testing.T) {
	for s, want := range map[message.Status]string{message.Sent: "sent", message.Failed: "failed", message.Queued: "retrying"} {
		if got := eventOf(s); got != want {
			t.Errorf("eventOf(%s) = %q, want %q", s, got, want)
		}
	}
}

// writes records what write asked of the transaction, as one line per call.
type writes []string

func (w *writes) Record(o store.Outcome)           { *w = append(*w, "record "+string(o.Status)) }
func (w *writes) Emit(_ store.Ref, event string)   { *w = append(*w, "event "+event) }
func (w *writes) IndexForCallbacks(store.Ref)      { *w = append(*w, "index for callbacks") }
func (w *writes) PriceLater(store.Ref)             { *w = append(*w, "price later") }
func (w *writes) DeadLetter(_ store.Ref, e []byte) { *w = append(*w, "dead letter "+string(e)) }
func (w *writes) Suppress(_ store.Ref, rcpt, reason string) {
	*w = append(*w, "suppress "+rcpt+" ("+reason+")")
}

func TestWhatAnOutcomeWrites(t *testing.T) {
	sent := func(cfg, pmid, source string) store.Outcome {
		return store.Outcome{Status: message.Sent, ProviderConfigID: cfg, ProviderMessageID: pmid, CostSource: source}
	}
	for _, tc := range []struct {
		name string
		o    outcome
		want []string
	}{
		{"a send through a provider that neither calls back nor prices later", outcome{Outcome: sent("prv_1", "id1", "")},
			[]string{"record sent", "event sent"}},
		{"a send through a provider that calls back is indexed", outcome{Outcome: sent("prv_1", "SM1", ""), awaitsCallbacks: true},
			[]string{"record sent", "event sent", "index for callbacks"}},
		{"no provider message id: nothing to index or price", outcome{Outcome: sent("prv_1", "", ""), awaitsCallbacks: true, pricedLater: true},
			[]string{"record sent", "event sent"}},
		{"no config (a sandbox route): nothing to index or price", outcome{Outcome: sent("", "SM1", ""), awaitsCallbacks: true, pricedLater: true},
			[]string{"record sent", "event sent"}},
		{"priced later without a price: a price check", outcome{Outcome: sent("prv_1", "SM1", ""), awaitsCallbacks: true, pricedLater: true},
			[]string{"record sent", "event sent", "index for callbacks", "price later"}},
		{"priced later by unit price: still asks the provider", outcome{Outcome: sent("prv_1", "SM1", costFromUnitPrice), pricedLater: true},
			[]string{"record sent", "event sent", "price later"}},
		{"the provider priced it with the send: no price check", outcome{Outcome: sent("prv_1", "SM1", costFromProvider), pricedLater: true},
			[]string{"record sent", "event sent"}},
		{"a retry is recorded as queued, its event retrying", outcome{Outcome: store.Outcome{Status: message.Queued}, envelope: []byte("env")},
			[]string{"record queued", "event retrying"}},
		{"a permanent failure: failed, not dead-lettered", outcome{Outcome: store.Outcome{Status: message.Failed}},
			[]string{"record failed", "event failed"}},
		{"retries exhausted: failed and dead-lettered with its intent", outcome{Outcome: store.Outcome{Status: message.Failed}, envelope: []byte("env")},
			[]string{"record failed", "event failed", "dead letter env"}},
		{"a recipient who opted out is suppressed", outcome{Outcome: store.Outcome{Status: message.Failed}, suppress: "complaint", recipientKey: "+14155550100"},
			[]string{"record failed", "event failed", "suppress +14155550100 (complaint)"}},
	} {
		var got writes
		write(&got, tc.o)
		if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, got, tc.want)
		}
	}
}
