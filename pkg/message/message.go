// Package message defines a send request, its validation, and the message status model.
package message

import (
	"encoding/json"
	"time"
)

// Channel is how a message travels.
type Channel string

// Channels.
const (
	SMS   Channel = "sms"
	Email Channel = "email"
	// InApp messages go to a recipient's inbox in comms itself (docs/inbox.md): no provider.
	InApp Channel = "in_app"
	// Push messages go to the devices of a recipient profile (docs/push.md), one delivery each.
	Push Channel = "push"
)

// Valid reports whether c is sms or email: a channel that reaches an address through a provider,
// which suppressions, preferences, templates and quotas are for. A message may also be InApp or
// Push, addressed to a recipient profile.
func (c Channel) Valid() bool { return c == SMS || c == Email }

// InAppContent is what an inbox message shows: its title and body are stored as a message's
// subject and text, its link and data beside them.
type InAppContent struct {
	Title     string          `json:"title,omitempty"`
	Body      string          `json:"body,omitempty"`
	ActionURL string          `json:"action_url,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Status is where a message is in its life. Transitions only move forward (see Rank):
// scheduled → queued → sending → sent → delivered, and from any of them to one of the terminal
// failed, undelivered, bounced or complained; a scheduled message may instead be canceled.
type Status string

// Statuses.
const (
	Scheduled   Status = "scheduled" // waiting for its send_at
	Queued      Status = "queued"
	Sending     Status = "sending"
	Sent        Status = "sent"
	Delivered   Status = "delivered"
	Failed      Status = "failed"
	Undelivered Status = "undelivered" // the carrier or mailbox provider did not deliver it
	Bounced     Status = "bounced"
	Complained  Status = "complained" // the recipient marked it as spam
	Canceled    Status = "canceled"   // canceled while scheduled; never sent
	Received    Status = "received"   // an inbound message: a person sent it to one of the tenant's numbers
)

// Directions: a message comms sent, or one a person sent to a tenant.
const (
	Outbound = "outbound"
	Inbound  = "inbound"
)

// Statuses lists every status in rank order.
var Statuses = []Status{Scheduled, Queued, Sending, Sent, Delivered, Failed, Undelivered, Bounced, Complained, Canceled, Received}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s.Rank() >= 0 }

// Rank orders statuses: a message moves only to a higher rank. The terminal statuses share
// the top rank, so none replaces another; -1 for an unknown status.
func (s Status) Rank() int {
	switch s {
	case Scheduled:
		return 0
	case Queued:
		return 1
	case Sending:
		return 2
	case Sent:
		return 3
	case Delivered:
		return 4
	case Failed, Undelivered, Bounced, Complained, Canceled, Received:
		return terminalRank
	}
	return -1
}

const terminalRank = 5

// Terminal reports whether s is final.
func (s Status) Terminal() bool { return s.Rank() == terminalRank }

// Request is the body of POST /v1/messages.
type Request struct {
	Channel Channel `json:"channel,omitempty"` // required unless Template is given
	// To is the address; it may be left out when Recipient names a profile holding one.
	To string `json:"to"`
	// Recipient is the tenant's id for the person (PUT /v1/recipients/{id}): the address comes
	// from the profile for the channel unless To is given, the profile's locale picks the
	// template's when the request names none, and the profile is recipient.* in templates.
	Recipient string            `json:"recipient,omitempty"`
	From      string            `json:"from,omitempty"`
	Subject   string            `json:"subject,omitempty"`
	Text      string            `json:"text,omitempty"`
	HTML      string            `json:"html,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	// InApp is an in_app message's content, instead of subject and text.
	InApp *InAppContent `json:"in_app,omitempty"`
	// Push is a push message's content, instead of subject and text.
	Push *PushContent `json:"push,omitempty"`
	// Category is "transactional" (the default: OTP, receipts), "marketing", or the key of one
	// of the tenant's categories (POST /v1/categories), which routes as its kind and whose
	// recipients' preferences decide whether it is sent. The tenant's fallback policy says which
	// kinds may use the system default provider.
	Category Category `json:"category,omitempty"`
	// Template renders subject, text and html from a stored template instead; the request then
	// carries none of them, and channel may be omitted (it is the template's).
	Template *TemplateRef `json:"template,omitempty"`
	// SendAt schedules the message, at most MaxScheduleAhead from now; a past time means now.
	SendAt *time.Time `json:"send_at,omitempty"`
}

// MaxScheduleAhead bounds send_at.
const MaxScheduleAhead = 30 * 24 * time.Hour

// TemplateRef names the template a message is rendered from, and the data it is rendered with.
type TemplateRef struct {
	Key string `json:"key"`
	// Locale is the recipient's (BCP 47, such as fr-CA); it falls back to its language (fr), then
	// to the template's default locale. Empty: the default locale.
	Locale string `json:"locale,omitempty"`
	// Version pins a version; 0 renders the locale's active version.
	Version int `json:"version,omitempty"`
	// Data is the template's variables, checked against its schema.
	Data map[string]any `json:"data,omitempty"`
}

// TemplateUse records what a message was rendered from: the version and locale actually used.
type TemplateUse struct {
	Key     string `json:"key"`
	Version int    `json:"version"`
	Locale  string `json:"locale"`
}

// Category says what a message is about: a built-in kind, or a tenant's category.
type Category string

// Categories.
const (
	Transactional Category = "transactional"
	Marketing     Category = "marketing"
)

// Message is a stored message as the API shows it.
type Message struct {
	ID                string            `json:"id"`
	TenantID          string            `json:"tenant_id"`
	Channel           Channel           `json:"channel"`
	To                string            `json:"to"`
	RecipientID       string            `json:"recipient,omitempty"` // the profile it was sent to, if any
	Direction         string            `json:"direction"`           // outbound, or inbound (To is then the person who sent it)
	From              string            `json:"from,omitempty"`
	Subject           string            `json:"subject,omitempty"`
	Text              string            `json:"text,omitempty"`
	HTML              string            `json:"html,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	InApp             *InAppContent     `json:"in_app,omitempty"` // an in_app message's content (subject and text are its title and body)
	Push              *PushContent      `json:"push,omitempty"`   // a push message's content (subject and text are its title and body)
	Category          Category          `json:"category"`
	Status            Status            `json:"status"`
	ScheduledAt       *time.Time        `json:"scheduled_at,omitempty"` // when a scheduled send is due
	Attempts          int               `json:"attempts"`
	IdempotencyKey    string            `json:"idempotency_key,omitempty"`
	ProviderConfigID  string            `json:"provider_id,omitempty"`
	ProviderType      string            `json:"provider,omitempty"`
	ProviderMessageID string            `json:"provider_message_id,omitempty"`
	Template          *TemplateUse      `json:"template,omitempty"`
	SMS               *SMSSize          `json:"sms,omitempty"`  // an SMS body's encoding and segments
	Cost              string            `json:"cost,omitempty"` // as the provider reported it
	CostCurrency      string            `json:"cost_currency,omitempty"`
	Error             *Error            `json:"error,omitempty"`
	// ContentPurgedAt is when the subject and bodies were blanked under the tenant's content
	// retention; absent while they are kept.
	ContentPurgedAt *time.Time `json:"content_purged_at,omitempty"`
	// ErasedAt is when an erasure of the recipient (POST /v1/erasures) removed the address,
	// content and metadata; to is then empty.
	ErasedAt    *time.Time `json:"erased_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"` // the provider's time of the first delivery
	OpenedAt    *time.Time `json:"opened_at,omitempty"`    // of the first open
	ClickedAt   *time.Time `json:"clicked_at,omitempty"`   // of the first click
	Events      []Event    `json:"events,omitempty"`
	// Deliveries are a push message's, one a device it went to (GET /v1/messages/{id} only).
	Deliveries []Delivery `json:"deliveries,omitempty"`
}

// Error is a failed message's normalized code and the provider's own words.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Event is one immutable row of a message's timeline.
type Event struct {
	Status           Status    `json:"status"`
	Attempt          int       `json:"attempt,omitempty"`
	Source           string    `json:"source"` // internal, provider (a callback) or replay
	ProviderConfigID string    `json:"provider_id,omitempty"`
	ProviderType     string    `json:"provider,omitempty"`
	ErrorCode        string    `json:"error_code,omitempty"`
	Reason           string    `json:"reason,omitempty"`
	OccurredAt       time.Time `json:"occurred_at"`
}

// MaxBatchItems bounds POST /v1/messages/batch.
const MaxBatchItems = 1000

// BatchRequest is the body of POST /v1/messages/batch: full requests, or with Template, one
// template rendered for each item's recipient and data.
type BatchRequest struct {
	// Template renders every item; its data is the default each item's data is merged over.
	Template *TemplateRef `json:"template,omitempty"`
	// SendAt schedules every item that does not set its own.
	SendAt   *time.Time  `json:"send_at,omitempty"`
	Messages []BatchItem `json:"messages"`
}

// BatchItem is one recipient of a batch. Without a batch template it is a full request; with
// one, it carries to, data, and optionally locale, from, metadata and category.
type BatchItem struct {
	Request
	Data   map[string]any `json:"data,omitempty"`
	Locale string         `json:"locale,omitempty"`
}

// ItemFaults names what item i carries that its batch's mode does not take.
func (b *BatchRequest) ItemFaults(i int) []FieldError {
	it := b.Messages[i]
	var out []FieldError
	if b.Template != nil && it.Template != nil {
		out = append(out, FieldError{Field: "template", Message: "must be absent: the batch's template renders every item"})
	}
	if b.Template == nil && len(it.Data) > 0 {
		out = append(out, FieldError{Field: "data", Message: "is only for a batch with a template; give this item its own template instead"})
	}
	if b.Template == nil && it.Locale != "" {
		out = append(out, FieldError{Field: "locale", Message: "is only for a batch with a template"})
	}
	return out
}

// Expand returns item i as a single request.
func (b *BatchRequest) Expand(i int) Request {
	it := b.Messages[i]
	req := it.Request
	if req.SendAt == nil {
		req.SendAt = b.SendAt
	}
	if b.Template == nil {
		return req
	}
	t := *b.Template
	if it.Locale != "" {
		t.Locale = it.Locale
	}
	if len(it.Data) > 0 {
		data := make(map[string]any, len(t.Data)+len(it.Data))
		for k, v := range t.Data {
			data[k] = v
		}
		for k, v := range it.Data {
			data[k] = v
		}
		t.Data = data
	}
	req.Template = &t
	return req
}
