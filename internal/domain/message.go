package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// MessageFilter narrows a message listing. Zero values do not filter.
type MessageFilter struct {
	Status        message.Status
	Channel       message.Channel
	Recipient     string    // an address, compared by its key
	RecipientID   string    // a recipient profile's id
	Template      string    // a template's key
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	Cursor        string    // from a previous page's NextCursor
	Limit         int
}
