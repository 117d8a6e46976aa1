package twilio_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/twilio"
)

func TestMessagingServiceAndStatusCallback(t *testing.T) {
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	creds, _ := json.Marshal(twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken})
	svc := "MG" + "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, sender, publicURL, wantCallback, wantService, wantFrom string
	}{
		{"from number, no public URL", `{"from":"+14155550100"}`, "", "", "", "+14155550100"},
		{"messaging service", `{"messaging_service_sid":"` + svc + `"}`, "https://hooks.example", "https://hooks.example/webhooks/twilio/prv_x", svc, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := twilio.New(provider.Config{ID: "prv_x", Type: twilio.Type, Channel: message.SMS, Credentials: creds, Sender: json.RawMessage(tc.sender)},
				provider.Env{TwilioBaseURL: tw.URL, PublicWebhookURL: tc.publicURL})
			if err != nil {
				t.Fatal(err)
			}
			before := len(tw.Received())
			if _, err := a.Send(context.Background(), provider.Message{To: "+14155550123", Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			r := tw.Received()[before]
			if r.Extra["StatusCallback"] != tc.wantCallback || r.Extra["MessagingServiceSid"] != tc.wantService || r.From != tc.wantFrom {
				t.Fatalf("sent %+v", r)
			}
		})
	}
}

// Twilio prices a message after sending it: the send's answer has no price, a fetch of the
// message later does, through twilio-go's FetchMessage.
func TestPriceIsFetchedAfterTheSend(t *testing.T) {
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	tw.PriceLater = true
	creds, _ := json.Marshal(twilio.Credentials{AccountSID: tw.AccountSID, AuthToken: tw.AuthToken})
	a, err := twilio.New(provider.Config{ID: "prv_x", Type: twilio.Type, Channel: message.SMS, Credentials: creds, Sender: json.RawMessage(`{"from":"+14155550100"}`)},
		provider.Env{TwilioBaseURL: tw.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var pricer provider.Pricer = a // the pricer finds Twilio adapters through this interface
	res, err := a.Send(ctx, provider.Message{To: "+14155550123", Text: "hi"})
	if err != nil || res.Cost != "" {
		t.Fatalf("send: %+v %v", res, err)
	}
	for i, want := range []string{"", fakeprovider.TwilioPrice} {
		cost, currency, err := pricer.Price(ctx, res.ProviderMessageID)
		if err != nil || cost != want || currency != "USD" {
			t.Fatalf("fetch %d: %q %q %v, want %q", i+1, cost, currency, err, want)
		}
	}
	var pe *provider.Error
	if _, _, err := pricer.Price(ctx, "SM"+strings.Repeat("f", 32)); !errors.As(err, &pe) {
		t.Fatalf("an unknown message: %v", err)
	}
}
