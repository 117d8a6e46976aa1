package twilio

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"
	messaging "github.com/twilio/twilio-go/rest/messaging/v1"

	"github.com/logicspike/comms/pkg/provider"
)

// ReceiveInbound verifies and parses Twilio's incoming-message webhook (the number's "A message
// comes in" URL): signed like status callbacks, a form with MessageSid, AccountSid, From, To and
// Body. A request for another account than the config's is refused as unverified.
func (callbacks) ReceiveInbound(_ context.Context, req provider.CallbackRequest) ([]provider.InboundMessage, error) {
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return nil, provider.Malformed("body is not application/x-www-form-urlencoded")
	}
	if err := VerifySignature(AuthToken(req.Config.Credentials), req.URL, form, req.Header.Get("X-Twilio-Signature")); err != nil {
		return nil, err
	}
	if sid := AccountSID(req.Config.Credentials); sid != "" && form.Get("AccountSid") != sid {
		return nil, provider.Unverified("AccountSid is not this config's account")
	}
	in := provider.InboundMessage{ProviderMessageID: form.Get("MessageSid"), From: form.Get("From"), To: form.Get("To"), Text: form.Get("Body")}
	if in.ProviderMessageID == "" {
		in.ProviderMessageID = form.Get("SmsSid")
	}
	if in.ProviderMessageID == "" || in.From == "" || in.To == "" {
		return nil, provider.Malformed("MessageSid, From and To are required")
	}
	flat := make(map[string]string, len(form))
	for k := range form {
		flat[k] = form.Get(k)
	}
	in.Payload, _ = json.Marshal(flat)
	return []provider.InboundMessage{in}, nil
}

// InboundAnswer is an empty TwiML response: comms sends no reply of its own (Twilio's Advanced
// Opt-Out answers STOP, START and HELP on the number).
func (callbacks) InboundAnswer() (string, []byte) {
	return "text/xml", []byte(`<?xml version="1.0" encoding="UTF-8"?><Response></Response>`)
}

// ConfigureInbound points the config's senders at inboundURL, so the messages people write back reach
// comms: with a Messaging Service, the service's inbound request URL; else the "A message comes
// in" webhook (SmsUrl, POST) of its from and its other senders that are numbers of the account.
// A sender ID cannot be written to; a number Twilio does not list on this account (ported, or
// on another account) and a change the credentials may not make (a restricted API key) are
// reported in the setup's detail, to be done by hand in Twilio's console.
func (a *Adapter) ConfigureInbound(ctx context.Context, inboundURL string) provider.InboundSetup {
	if sid := a.sender.MessagingServiceSID; sid != "" {
		params := (&messaging.UpdateServiceParams{}).SetInboundRequestUrl(inboundURL).SetInboundMethod(http.MethodPost)
		svc, err := messaging.NewApiServiceWithClient(a.twilioClient(ctx)).UpdateService(sid, params)
		if err != nil {
			return provider.InboundSetup{Configured: []string{}, Detail: "Twilio refused to set the Messaging Service's inbound request URL (" + refusal(ctx, err) + "): set it by hand"}
		}
		out := provider.InboundSetup{Configured: []string{sid}}
		if svc.UseInboundWebhookOnNumber != nil && *svc.UseInboundWebhookOnNumber {
			out.Detail = "the service lets its numbers' own webhooks win (use_inbound_webhook_on_number): point them at inbound_url too"
		}
		return out
	}
	out := provider.InboundSetup{Configured: []string{}}
	var notes []string
	for _, n := range append([]string{a.sender.From}, a.sender.Senders...) {
		if !e164RE.MatchString(n) {
			continue // a sender ID: people cannot write to it
		}
		found, err := a.api(ctx).ListIncomingPhoneNumber((&openapi.ListIncomingPhoneNumberParams{}).SetPhoneNumber(n).SetLimit(1))
		if err == nil && len(found) == 0 {
			notes = append(notes, n+" is not a number of this account")
			continue
		}
		if err == nil {
			params := (&openapi.UpdateIncomingPhoneNumberParams{}).SetSmsUrl(inboundURL).SetSmsMethod(http.MethodPost)
			_, err = a.api(ctx).UpdateIncomingPhoneNumber(*found[0].Sid, params)
		}
		if err != nil {
			notes = append(notes, "Twilio refused to set the webhook of "+n+" ("+refusal(ctx, err)+")")
			continue
		}
		out.Configured = append(out.Configured, n)
	}
	switch {
	case len(notes) > 0:
		out.Detail = strings.Join(notes, "; ") + ": point its incoming-message webhook at inbound_url by hand"
	case len(out.Configured) == 0:
		out.Detail = "an alphanumeric sender ID cannot receive messages"
	}
	return out
}

func refusal(ctx context.Context, err error) string {
	return provider.Classify(Type, classify(ctx, err)).Describe()
}
