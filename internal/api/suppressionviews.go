package api

import (
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// Suppression is a recipient a tenant does not send to on a channel, as the API shows it.
type Suppression struct {
	Channel   message.Channel `json:"channel"`
	Recipient string          `json:"recipient"`
	Reason    string          `json:"reason"`           // bounce, complaint or manual
	Detail    string          `json:"detail,omitempty"` // the provider's words
	MessageID string          `json:"message_id,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// SuppressionView is x as the API shows it.
func SuppressionView(x domain.Suppression) Suppression {
	return Suppression{Channel: x.Channel, Recipient: x.Recipient, Reason: x.Reason, Detail: x.Detail, MessageID: x.MessageID, CreatedAt: x.CreatedAt}
}

// UnmatchedCallback is a callback that never found its message, as GET /admin/callbacks/unmatched
// shows it.
type UnmatchedCallback struct {
	ID                int64     `json:"id"`
	ProviderConfigID  string    `json:"provider_id"`
	ProviderType      string    `json:"provider"`
	ProviderMessageID string    `json:"provider_message_id"`
	Status            string    `json:"status"`
	ReceivedAt        time.Time `json:"received_at"`
	Tries             int       `json:"tries"`
}

func unmatchedView(c domain.UnmatchedCallback) UnmatchedCallback {
	return UnmatchedCallback{ID: c.ID, ProviderConfigID: c.ProviderConfigID, ProviderType: c.ProviderType,
		ProviderMessageID: c.ProviderMessageID, Status: c.Status, ReceivedAt: c.ReceivedAt, Tries: c.Tries}
}
