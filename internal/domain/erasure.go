package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Erasure removes one recipient's address and content from everything a tenant's history holds
// (GDPR Art. 17, CCPA deletion); it runs in bounded batches until nothing is left.
type Erasure struct {
	ID       string
	TenantID string
	Channel  message.Channel
	// RecipientHash is the recipient's keyed hash, which is all that is kept of the address once
	// the erasure is done (an opt-out keeps holding through it).
	RecipientHash string
	Status        string // running or done
	Counts        ErasureCounts
	CreatedAt     time.Time
	FinishedAt    *time.Time
}

// ErasureCounts is what an erasure changed: messages erased (of which canceled, as they were
// still to be sent), their events and callbacks, dead letters and webhook deliveries redacted,
// and suppressions kept as the hash alone.
type ErasureCounts struct {
	Messages, Canceled, Events, Callbacks, DeadLetters, WebhookDeliveries, Suppressions int64
}

// ErasureFilter narrows ListErasures; zero values do not filter.
type ErasureFilter struct {
	Status string
	// Recipient is an address on Channel, found by its keyed hash (the address is not kept).
	Channel   message.Channel
	Recipient string
	Cursor    string
	Limit     int
}

// Erasure statuses.
const (
	ErasureRunning = "running"
	ErasureDone    = "done"
)
