package api

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// Bucket is one interval of /v1/analytics/timeseries.
type Bucket struct {
	Start      time.Time `json:"start"`
	Sent       int64     `json:"sent"`
	Delivered  int64     `json:"delivered"`
	Opened     int64     `json:"opened"`
	Clicked    int64     `json:"clicked"`
	Bounced    int64     `json:"bounced"`
	Complained int64     `json:"complained"`
	Failed     int64     `json:"failed"`
	Read       int64     `json:"read"`
}

// BucketView is b as the API shows it.
func BucketView(b domain.Bucket) Bucket {
	return Bucket{Start: b.Start, Sent: b.Sent, Delivered: b.Delivered, Opened: b.Opened, Clicked: b.Clicked,
		Bounced: b.Bounced, Complained: b.Complained, Failed: b.Failed, Read: b.Read}
}

// ProviderErrorCount is one line of /v1/analytics/provider-errors.
type ProviderErrorCount struct {
	ProviderType     string          `json:"provider"`
	ProviderConfigID string          `json:"provider_id,omitempty"`
	ProviderName     string          `json:"provider_name,omitempty"`
	Channel          message.Channel `json:"channel"`
	Code             string          `json:"code"`
	Count            int64           `json:"count"`
	Example          ErrorExample    `json:"example"`
}

// ErrorExample is the latest provider message for an error.
type ErrorExample struct {
	Message      string    `json:"message"`
	ProviderCode string    `json:"provider_code,omitempty"`
	At           time.Time `json:"at"`
}

// ProviderErrorView is e as the API shows it.
func ProviderErrorView(e domain.ProviderErrorCount) ProviderErrorCount {
	return ProviderErrorCount{ProviderType: e.ProviderType, ProviderConfigID: e.ProviderConfigID, ProviderName: e.ProviderName,
		Channel: e.Channel, Code: e.Code, Count: e.Count,
		Example: ErrorExample{Message: e.Example.Message, ProviderCode: e.Example.ProviderCode, At: e.Example.At}}
}

// Counters are usage counts, as /v1/usage shows them.
type Counters struct {
	Accepted  int64   `json:"accepted"`
	Attempts  int64   `json:"attempts"`
	Sent      int64   `json:"sent"`
	Delivered int64   `json:"delivered"`
	Failed    int64   `json:"failed"`
	Bounced   int64   `json:"bounced"`
	Segments  int64   `json:"segments"`
	Cost      []Money `json:"cost"` // one amount per currency, as exact decimal strings
}

// Money is an amount in one currency.
type Money struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

// CountersView is c as the API shows it.
func CountersView(c domain.Counters) Counters {
	cost := make([]Money, len(c.Cost))
	for i, m := range c.Cost {
		cost[i] = Money{Currency: m.Currency, Amount: m.Amount}
	}
	return Counters{Accepted: c.Accepted, Attempts: c.Attempts, Sent: c.Sent, Delivered: c.Delivered, Failed: c.Failed,
		Bounced: c.Bounced, Segments: c.Segments, Cost: cost}
}

// UsageRow is one row of /v1/usage: the grouped dimensions (only those are set) and the counts.
type UsageRow struct {
	Day      string `json:"day,omitempty"`
	Month    string `json:"month,omitempty"`
	Channel  string `json:"channel,omitempty"`
	Provider string `json:"provider_id,omitempty"`
	Template string `json:"template,omitempty"`
	Category string `json:"category,omitempty"`
	Counters
}

// UsageRowView is u as the API shows it.
func UsageRowView(u domain.UsageRow) UsageRow {
	return UsageRow{Day: u.Day, Month: u.Month, Channel: u.Channel, Provider: u.Provider, Template: u.Template,
		Category: u.Category, Counters: CountersView(u.Counters)}
}

// AuditEntry is one entry of the audit log (docs/audit.md).
type AuditEntry struct {
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	TenantID   string          `json:"tenant_id,omitempty"`
	Actor      AuditActor      `json:"actor"`
	RequestID  string          `json:"request_id,omitempty"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

// AuditActor is who made a change.
type AuditActor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// AuditView is e as the API shows it.
func AuditView(e domain.AuditEntry) AuditEntry {
	return AuditEntry{ID: e.ID, At: e.At, TenantID: e.TenantID, Actor: AuditActor{Kind: e.Actor.Kind, ID: e.Actor.ID},
		RequestID: e.RequestID, Action: e.Action, TargetType: e.TargetType, TargetID: e.TargetID, Before: e.Before, After: e.After}
}
