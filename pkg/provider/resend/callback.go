package resend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// SignatureTolerance is how far svix-timestamp may be from now: Svix's own default.
const SignatureTolerance = 5 * time.Minute

// VerifySignature checks Resend's Svix signature: svix-signature holds "v1,<base64 HMAC-SHA256>"
// values of "svix-id.svix-timestamp.body" under the endpoint's signing secret (whsec_…), with
// svix-timestamp within SignatureTolerance of now. Svix's scheme is Standard Webhooks' with other
// header names, so the webhook adapter's verifier serves both.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := standardwebhooks.DecodeSecret(secret)
	if err != nil {
		return provider.Unverified("the config's webhook_secret is unusable: %v", err)
	}
	if err := standardwebhooks.VerifyHeaders(key, "svix-", h, body, now, SignatureTolerance); err != nil {
		return provider.Unverified("%v", err)
	}
	return nil
}

type resendEvent struct {
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      struct {
		EmailID   string    `json:"email_id"`
		CreatedAt time.Time `json:"created_at"`
		To        []string  `json:"to"`
		Bounce    *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			SubType string `json:"subType"`
		} `json:"bounce"`
		Click *struct {
			Link string `json:"link"`
		} `json:"click"`
		Failed *struct {
			Reason string `json:"reason"`
		} `json:"failed"`
	} `json:"data"`
}

// ParseEvent normalizes a verified Resend webhook for config configID; svix-id is the event key
// (Svix keeps it across retries).
func ParseEvent(configID, svixID string, body []byte) (provider.Event, error) {
	var e resendEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return provider.Event{}, provider.Malformed("not a Resend event: %v", err)
	}
	if e.Type == "" || e.Data.EmailID == "" {
		return provider.Event{}, provider.Malformed("type and data.email_id are required")
	}
	if len(e.Data.EmailID) > 128 || len(svixID) > 128 || svixID == "" {
		return provider.Event{}, provider.Malformed("email_id or svix-id is missing or too long")
	}
	cb := provider.Event{ProviderConfigID: configID, ProviderType: Type, EventKey: svixID,
		ProviderMessageID: e.Data.EmailID, OccurredAt: e.CreatedAt, Payload: body}
	if len(e.Data.To) > 0 {
		cb.Recipient = e.Data.To[0]
	}
	switch e.Type {
	case "email.sent":
		cb.Status = message.Sent
	case "email.scheduled":
		cb.Status = message.Accepted
	case "email.delivered":
		cb.Status = message.Delivered
	case "email.delivery_delayed":
		cb.Status = message.Delayed
	case "email.bounced":
		cb.Status = message.Bounced
		cb.ErrorCode, cb.Suppress = string(provider.InvalidRecipient), "bounce"
		if b := e.Data.Bounce; b != nil {
			cb.Reason = strings.TrimSpace(b.Type + " bounce: " + b.SubType + ": " + provider.Truncate(b.Message, 300))
			if b.Type == "Transient" {
				cb.ErrorCode, cb.Suppress = string(provider.MailboxUnavailable), ""
			}
		}
	case "email.complained":
		cb.Status, cb.Suppress = message.Complained, "complaint"
	case "email.opened":
		cb.Status = message.Opened
	case "email.clicked":
		cb.Status = message.Clicked
		if c := e.Data.Click; c != nil {
			cb.Reason = provider.Truncate(c.Link, 500)
		}
	case "email.failed":
		cb.Status, cb.ErrorCode = message.Failed, string(provider.Unknown)
		if f := e.Data.Failed; f != nil {
			cb.Reason = provider.Truncate(f.Reason, 300)
		}
	default:
		return provider.Event{}, provider.Malformed("type %q is not a Resend email event", provider.Truncate(e.Type, 40))
	}
	if cb.OccurredAt.IsZero() {
		cb.OccurredAt = e.Data.CreatedAt
	}
	if cb.OccurredAt.IsZero() {
		return provider.Event{}, provider.Malformed("created_at is required")
	}
	cb.OccurredAt = cb.OccurredAt.UTC()
	return cb, nil
}

type callbacks struct{}

// Receive verifies and parses one webhook event.
func (callbacks) Receive(_ context.Context, req provider.CallbackRequest) ([]provider.Event, error) {
	secret := WebhookSecret(req.Config.Credentials)
	if secret == "" {
		return nil, provider.Unverified("the config has no webhook_secret: set it to the Resend webhook's signing secret")
	}
	if err := VerifySignature(secret, req.Header, req.Body, req.Now); err != nil {
		return nil, err
	}
	ev, err := ParseEvent(req.Config.ID, req.Header.Get("svix-id"), req.Body)
	if err != nil {
		return nil, err
	}
	return []provider.Event{ev}, nil
}
