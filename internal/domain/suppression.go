package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Suppression is a recipient a tenant does not send to on a channel.
type Suppression struct {
	Channel   message.Channel
	Recipient string
	Reason    string // bounce, complaint or manual
	Detail    string // the provider's words
	MessageID string
	CreatedAt time.Time
}

// SuppressionFilter narrows ListSuppressions; zero values do not filter.
type SuppressionFilter struct {
	Channel   message.Channel
	Recipient string // exact, compared as message.RecipientKey
	Reason    string
	Cursor    string
	Limit     int
}

// UnmatchedCallback is a callback that never found its message.
type UnmatchedCallback struct {
	ID                int64
	ProviderConfigID  string
	ProviderType      string
	ProviderMessageID string
	Status            string
	ReceivedAt        time.Time
	Tries             int
}
