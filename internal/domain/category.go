package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Category is one kind of message a tenant declares, for people's preferences.
type Category struct {
	Key, Name, Description string
	Kind                   message.Category // transactional or marketing: how its messages are routed
	DefaultIn              bool             // a person who chose nothing receives it
	Required               bool             // nobody can opt out (security alerts)
	CreatedAt, UpdatedAt   time.Time
}

// CategoryPatch changes a category; nil fields are left alone.
type CategoryPatch struct {
	Name, Description *string
	Kind              *message.Category
	DefaultIn         *bool
	Required          *bool
}

// Preferences are a person's choices: by category key, by channel, in (true) or out.
type Preferences map[string]map[message.Channel]bool

// PreferenceSubject is whose preferences they are: a recipient profile, or an address.
type PreferenceSubject struct {
	RecipientID string
	Channel     message.Channel // with Address
	Address     string
}
