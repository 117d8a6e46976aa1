package domain

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// DeadLetter is a message that ran out of retries, as ops list and replay it.
type DeadLetter struct {
	ID               int64
	MessageID        string
	TenantID         string
	Channel          message.Channel
	ProviderType     string
	ProviderConfigID string
	ErrorCode        string
	ErrorMessage     string
	Attempts         int
	Envelope         json.RawMessage // the intent as it was on the send topic
	FailedAt         time.Time
	ReplayedAt       *time.Time
	ReplayID         string
}

// DeadLetterFilter selects dead letters; empty fields match everything.
type DeadLetterFilter struct {
	TenantID         string
	ProviderType     string
	ProviderConfigID string
	ErrorCode        string
	From, To         *time.Time
	MessageIDs       []string
	// IncludeReplayed lists entries already replayed too (never for a replay).
	IncludeReplayed bool
}

// Empty reports whether f selects every entry.
func (f DeadLetterFilter) Empty() bool {
	return f.TenantID == "" && f.ProviderType == "" && f.ProviderConfigID == "" && f.ErrorCode == "" &&
		f.From == nil && f.To == nil && len(f.MessageIDs) == 0
}

// Replay is one replay of dead letters: who ran it, with which filter, and what it did.
type Replay struct {
	ID       string
	Actor    string
	At       time.Time
	Filter   DeadLetterFilter
	DryRun   bool
	Matched  int // entries the filter selected (not yet replayed)
	Replayed int // messages put back in the queue
}
