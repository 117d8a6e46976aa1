package twilio

import (
	"context"
	"encoding/json"
	"net/url"

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
