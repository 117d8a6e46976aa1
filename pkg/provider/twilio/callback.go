package twilio

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// VerifySignature checks X-Twilio-Signature: HMAC-SHA1 under the account's auth token of the full URL
// Twilio requested (scheme, host, path and query, as Twilio saw them: behind a proxy that is the
// public URL, see COMMS_PUBLIC_WEBHOOK_URL) followed by each form parameter's name and value in
// name order. It uses twilio-go's RequestValidator, which also accepts the URL with or without
// its default port, as Twilio signs either.
func VerifySignature(authToken, fullURL string, form url.Values, signature string) error {
	if signature == "" {
		return provider.Unverified("missing X-Twilio-Signature")
	}
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) != 1 {
			// Twilio's status callbacks never repeat a parameter, and the validator signs one value each.
			return provider.Unverified("parameter %q repeated", k)
		}
		params[k] = vs[0]
	}
	v := twilioclient.NewRequestValidator(authToken)
	if !v.Validate(fullURL, params, signature) {
		return provider.Unverified("X-Twilio-Signature does not match")
	}
	return nil
}

// twilioStatuses maps MessageStatus. Progress before the carrier (queued, accepted, scheduled,
// sending) changes nothing; "read" (WhatsApp, RCS) is an open.
var twilioStatuses = map[string]message.Status{
	"queued": message.Accepted, "accepted": message.Accepted, "scheduled": message.Accepted, "sending": message.Accepted,
	"sent": message.Sent, "delivered": message.Delivered, "undelivered": message.Undelivered, "failed": message.Failed,
	"read": message.Opened, "canceled": message.Failed, "partially_delivered": message.Delivered,
}

// ParseCallback normalizes a verified status callback for config configID. Twilio sends no event id
// or time for most statuses: (MessageSid, MessageStatus) is the event, received the time unless
// RawDlrDoneDate (the carrier's YYMMDDhhmm, UTC) says otherwise.
func ParseCallback(configID string, form url.Values, received time.Time) (provider.Event, error) {
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsSid")
	}
	raw := form.Get("MessageStatus")
	if raw == "" {
		raw = form.Get("SmsStatus")
	}
	if sid == "" || raw == "" {
		return provider.Event{}, provider.Malformed("MessageSid and MessageStatus are required")
	}
	if len(sid) > 64 {
		return provider.Event{}, provider.Malformed("MessageSid is too long")
	}
	st, ok := twilioStatuses[raw]
	if !ok {
		return provider.Event{}, provider.Malformed("MessageStatus %q is not a Twilio message status", provider.Truncate(raw, 40))
	}
	flat := make(map[string]string, len(form))
	for k, vs := range form {
		flat[k] = strings.Join(vs, ",")
	}
	payload, _ := json.Marshal(flat)
	cb := provider.Event{
		ProviderConfigID: configID, ProviderType: Type, EventKey: sid + ":" + raw,
		ProviderMessageID: sid, Status: st, Recipient: form.Get("To"), OccurredAt: received.UTC(), Payload: payload,
	}
	if d, err := time.Parse("0601021504", form.Get("RawDlrDoneDate")); err == nil && (st == message.Delivered || st == message.Undelivered) {
		cb.OccurredAt = d.UTC()
	}
	if code := form.Get("ErrorCode"); code != "" && code != "0" {
		cb.ProviderCode = code
		cb.ErrorCode = string(CodeFor(code))
		cb.Reason = Explain(code)
		if code == "21610" {
			// the recipient replied STOP: Twilio refuses every later message
			cb.Suppress = "complaint"
		}
		if cb.Status == message.Delivered || cb.Status == message.Sent || cb.Status == message.Accepted {
			cb.ErrorCode = "" // a warning on a message that went through is not a failure
		}
	} else if st == message.Undelivered || st == message.Failed {
		cb.ErrorCode = string(provider.Unknown)
	}
	return cb, nil
}

type callbacks struct{}

// Receive verifies and parses one status callback.
func (callbacks) Receive(_ context.Context, req provider.CallbackRequest) ([]provider.Event, error) {
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return nil, provider.Malformed("body is not application/x-www-form-urlencoded")
	}
	if err := VerifySignature(AuthToken(req.Config.Credentials), req.URL, form, req.Header.Get("X-Twilio-Signature")); err != nil {
		return nil, err
	}
	ev, err := ParseCallback(req.Config.ID, form, req.Now)
	if err != nil {
		return nil, err
	}
	return []provider.Event{ev}, nil
}
