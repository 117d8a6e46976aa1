package worker

import (
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
