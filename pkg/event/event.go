// Package event is what comms tells other systems about its messages: CloudEvents 1.0 in
// structured mode (one JSON object holding the attributes and the data), published on the
// comms.events topic keyed by tenant. docs/events.md documents the types and fields.
package event

import (
	"strconv"
	"time"
)

// ContentType is the record's content-type header value (CloudEvents structured mode).
const ContentType = "application/cloudevents+json"

// Message event types: TypePrefix followed by the message's new status, or replayed.
const (
	TypePrefix  = "comms.message."
	Accepted    = TypePrefix + "accepted"
	Scheduled   = TypePrefix + "scheduled"
	Sent        = TypePrefix + "sent"
	Delivered   = TypePrefix + "delivered"
	Failed      = TypePrefix + "failed"
	Undelivered = TypePrefix + "undelivered"
	Bounced     = TypePrefix + "bounced"
	Complained  = TypePrefix + "complained"
	Opened      = TypePrefix + "opened"
	Clicked     = TypePrefix + "clicked"
	Canceled    = TypePrefix + "canceled"
	Replayed    = TypePrefix + "replayed"
	// Received: a person sent a message to one of the tenant's numbers (an inbound SMS); the
	// data's recipient is who sent it.
	Received = TypePrefix + "received"
	// Read: the recipient read an in_app message in its inbox (docs/inbox.md).
	Read = TypePrefix + "read"
)

// Account event types: changes to a tenant's setup rather than to a message. The subject is the
// provider config, webhook endpoint or channel (quotas) concerned.
const (
	// ProviderAuthFailed: the provider refused a config's credentials; it is skipped until they change.
	ProviderAuthFailed = "comms.provider.auth_failed"
	// ProviderCircuitOpen: a config failed repeatedly and is rested; its traffic fails over.
	ProviderCircuitOpen = "comms.provider.circuit_open"
	// ProviderRecovered: a config that was auth_failed or circuit_open sends again.
	ProviderRecovered = "comms.provider.recovered"
	// EndpointDisabled: a webhook endpoint failed every delivery for five days and was disabled.
	EndpointDisabled = "comms.webhook_endpoint.disabled"
	// QuotaWarning: a channel's use this month reached its soft limit (80% of the hard one by default).
	QuotaWarning = "comms.quota.warning"
	// QuotaExceeded: a channel's use this month reached its hard limit, or a request was refused for it.
	QuotaExceeded = "comms.quota.exceeded"
	// RecipientErased: an erasure (POST /v1/erasures) removed a recipient from the tenant's
	// history; the subject is the erasure's id and data names the recipient by its hash only.
	RecipientErased = "comms.recipient.erased"
	// PreferenceUpdated: a person's preferences changed; the subject is the person
	// (recipient:<id>, or address:<hash>) and data holds their choices after.
	PreferenceUpdated = "comms.preference.updated"
	// DeviceRemoved: a push service said a device's token or subscription is gone (uninstalled,
	// expired, unsubscribed) and comms removed the device from its profile; the subject is the
	// device's id and data names the profile, the platform and the reason.
	DeviceRemoved = "comms.device.removed"
	// Test is what POST /v1/webhook-endpoints/{id}/test sends; it goes only to that endpoint.
	Test = "comms.webhook.test"
)

// Types lists every type a webhook endpoint may subscribe to.
var Types = []string{Accepted, Scheduled, Sent, Delivered, Failed, Undelivered, Bounced, Complained, Opened, Clicked,
	Canceled, Replayed, Received, Read, ProviderAuthFailed, ProviderCircuitOpen, ProviderRecovered, EndpointDisabled, QuotaWarning, QuotaExceeded,
	RecipientErased, PreferenceUpdated, DeviceRemoved}

// Event is one CloudEvent.
type Event struct {
	SpecVersion     string    `json:"specversion"` // "1.0"
	ID              string    `json:"id"`          // stable across redeliveries: dedupe on it
	Source          string    `json:"source"`      // /tenants/{tenant_id}
	Type            string    `json:"type"`
	Subject         string    `json:"subject"` // the message id, or the endpoint id
	Time            time.Time `json:"time"`    // when the change happened
	DataContentType string    `json:"datacontenttype"`
	Data            Data      `json:"data"`
}

// Data describes the change: for message events the message (every field but endpoint_id); for
// provider events the provider, its health as status and the reason as error.message; for
// webhook events the endpoint (and, when disabled, the reason as error.message).
type Data struct {
	TenantID   string `json:"tenant_id"`
	MessageID  string `json:"message_id,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
	Channel    string `json:"channel,omitempty"`
	Recipient  string `json:"recipient,omitempty"`
	Status     string `json:"status,omitempty"`
	Category   string `json:"category,omitempty"`
	Template   string `json:"template,omitempty"`
	// Attempt is the send attempt the change belongs to (0 before the first).
	Attempt  int       `json:"attempt"`
	Provider *Provider `json:"provider,omitempty"`
	Error    *Error    `json:"error,omitempty"`
	// DeadLettered marks a failure that put the message in the dead-letter queue.
	DeadLettered bool `json:"dead_lettered,omitempty"`
	// Quota is on quota events: the limits and the use that reached them.
	Quota *Quota `json:"quota,omitempty"`
	// RecipientHash and Erasure are on comms.recipient.erased: the recipient's keyed hash (never
	// the address) and what the erasure changed.
	RecipientHash string   `json:"recipient_hash,omitempty"`
	Erasure       *Erasure `json:"erasure,omitempty"`
	// RecipientID and Preferences are on comms.preference.updated: the profile whose choices
	// changed (or, for an address, RecipientHash and Channel), and all its choices after, by
	// category and channel.
	RecipientID string                     `json:"recipient_id,omitempty"`
	Preferences map[string]map[string]bool `json:"preferences,omitempty"`
	// Device is on comms.device.removed, with RecipientID (the profile it was removed from) and
	// Error (the push service's words).
	Device *Device `json:"device,omitempty"`
}

// Device is a recipient's device as comms.device.removed reports it: which it was, and the push
// message whose delivery found it gone, through which provider config.
type Device struct {
	ID        string    `json:"id"`
	Platform  string    `json:"platform"` // fcm, apns or webpush
	MessageID string    `json:"message_id,omitempty"`
	Provider  *Provider `json:"provider,omitempty"`
}

// Erasure is what an erasure changed, as comms.recipient.erased reports it.
type Erasure struct {
	ID                string `json:"id"`
	Messages          int64  `json:"messages"`
	Canceled          int64  `json:"canceled"`
	Events            int64  `json:"events"`
	Callbacks         int64  `json:"callbacks"`
	DeadLetters       int64  `json:"dead_letters"`
	WebhookDeliveries int64  `json:"webhook_deliveries"`
	Suppressions      int64  `json:"suppressions"`
}

// Quota is a channel's monthly quota as a quota event reports it.
type Quota struct {
	Channel   string `json:"channel"`
	Month     string `json:"month"` // 2026-12
	SoftLimit int64  `json:"soft_limit"`
	HardLimit int64  `json:"hard_limit"`
	Used      int64  `json:"used"`
}

// Provider is the provider config that handled the message.
type Provider struct {
	Type     string `json:"type"`
	ConfigID string `json:"config_id,omitempty"`
}

// Error is why the message failed or was not delivered: the normalized code and the provider's
// own words.
type Error struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// MessageType is the event type of a message_events row, and false for kinds not published
// (claims, retries, the provider's intermediate reports).
func MessageType(status, source string) (string, bool) {
	switch status {
	case "queued":
		if source == "replay" {
			return Replayed, true
		}
		return Accepted, true
	case "scheduled", "sent", "delivered", "failed", "undelivered", "bounced", "complained", "opened", "clicked", "canceled", "received", "read":
		return TypePrefix + status, true
	}
	return "", false
}

// ID is the event id of the message_events row with this id.
func ID(rowID int64) string { return "evt_" + strconv.FormatInt(rowID, 10) }

// Source is the source attribute of a tenant's events.
func Source(tenantID string) string { return "/tenants/" + tenantID }

// AccountID is the event id of the account_events row with this id.
func AccountID(rowID int64) string { return "evt_a" + strconv.FormatInt(rowID, 10) }
