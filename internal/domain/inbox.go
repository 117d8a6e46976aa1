package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// InboxItem is one in_app message as its recipient's inbox shows it.
type InboxItem struct {
	ID         string
	Content    message.InAppContent
	Category   message.Category
	CreatedAt  time.Time
	SentAt     *time.Time // when it reached the inbox
	SeenAt     *time.Time
	ReadAt     *time.Time
	ArchivedAt *time.Time
}

// InboxFilter pages through an inbox.
type InboxFilter struct {
	Cursor   string
	Limit    int
	Archived bool // the archived messages, instead of the others
}

// InboxPage is a page of an inbox, and how many of its messages are unread (archived ones aside).
type InboxPage struct {
	Items       []InboxItem
	Next        string
	UnreadCount int
}

// InboxAction is what a recipient does with an inbox message.
type InboxAction string

// Inbox actions, as POST /v1/inbox/{id}/{action} names them.
const (
	InboxSeen     InboxAction = "seen"
	InboxRead     InboxAction = "read"
	InboxArchived InboxAction = "archived"
)

// InboxSecrets are a tenant's sealed inbox secrets: the current one, and the one it replaced
// (valid for a while after RotatedAt).
type InboxSecrets struct {
	Version         string
	Sealed          []byte
	PreviousVersion string // "" when there is none
	PreviousSealed  []byte
	RotatedAt       time.Time
}
