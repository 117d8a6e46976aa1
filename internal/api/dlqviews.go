package api

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// DeadLetter is a dead letter as /admin/dlq shows it.
type DeadLetter struct {
	ID               int64           `json:"id"`
	MessageID        string          `json:"message_id"`
	TenantID         string          `json:"tenant_id"`
	Channel          message.Channel `json:"channel"`
	ProviderType     string          `json:"provider"`
	ProviderConfigID string          `json:"provider_id"`
	ErrorCode        string          `json:"error_code"`
	ErrorMessage     string          `json:"error_message"`
	Attempts         int             `json:"attempts"`
	Envelope         json.RawMessage `json:"envelope"`
	FailedAt         time.Time       `json:"failed_at"`
	ReplayedAt       *time.Time      `json:"replayed_at,omitempty"`
	ReplayID         string          `json:"replay_id,omitempty"`
}

// DeadLetterView is d as the API shows it.
func DeadLetterView(d domain.DeadLetter) DeadLetter {
	return DeadLetter{ID: d.ID, MessageID: d.MessageID, TenantID: d.TenantID, Channel: d.Channel, ProviderType: d.ProviderType,
		ProviderConfigID: d.ProviderConfigID, ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage, Attempts: d.Attempts,
		Envelope: d.Envelope, FailedAt: d.FailedAt, ReplayedAt: d.ReplayedAt, ReplayID: d.ReplayID}
}

// DeadLetterFilter selects dead letters in a replay request and in a replay's record.
type DeadLetterFilter struct {
	TenantID         string     `json:"tenant_id,omitempty"`
	ProviderType     string     `json:"provider,omitempty"`
	ProviderConfigID string     `json:"provider_id,omitempty"`
	ErrorCode        string     `json:"error_code,omitempty"`
	From             *time.Time `json:"from,omitempty"`
	To               *time.Time `json:"to,omitempty"`
	MessageIDs       []string   `json:"message_ids,omitempty"`
	// IncludeReplayed is refused in a replay; it is here so that saying it is an error, not ignored.
	IncludeReplayed bool `json:"include_replayed,omitempty"`
}

func (f DeadLetterFilter) domain() domain.DeadLetterFilter {
	return domain.DeadLetterFilter{TenantID: f.TenantID, ProviderType: f.ProviderType, ProviderConfigID: f.ProviderConfigID,
		ErrorCode: f.ErrorCode, From: f.From, To: f.To, MessageIDs: f.MessageIDs, IncludeReplayed: f.IncludeReplayed}
}

// Replay is what a replay did; the replay log shows its filter too.
type Replay struct {
	ID       string            `json:"replay_id"`
	Actor    string            `json:"actor"`
	At       time.Time         `json:"at"`
	Filter   *DeadLetterFilter `json:"filter,omitempty"`
	DryRun   bool              `json:"dry_run"`
	Matched  int               `json:"matched"`
	Replayed int               `json:"replayed"`
}

// ReplayView is r as the API shows it, without its filter (the caller just sent it).
func ReplayView(r domain.Replay) Replay {
	return Replay{ID: r.ID, Actor: r.Actor, At: r.At, DryRun: r.DryRun, Matched: r.Matched, Replayed: r.Replayed}
}

// ReplayLogView is r as the replay log shows it, with its filter.
func ReplayLogView(r domain.Replay) Replay {
	v := ReplayView(r)
	f := r.Filter
	v.Filter = &DeadLetterFilter{TenantID: f.TenantID, ProviderType: f.ProviderType, ProviderConfigID: f.ProviderConfigID,
		ErrorCode: f.ErrorCode, From: f.From, To: f.To, MessageIDs: f.MessageIDs}
	return v
}
