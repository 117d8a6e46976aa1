package domain

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Template is a tenant's template: what it is for and which version each locale sends.
type Template struct {
	Key           string
	Name          string
	Channel       message.Channel
	Category      message.Category
	DefaultLocale string
	Variables     json.RawMessage // JSON Schema of the data object
	// ActiveVersions maps each locale to the version it sends.
	ActiveVersions map[string]int
	Archived       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Revision counts the changes that alter what sends render (edits, activations, archiving):
	// caches compare it to know an entry is current.
	Revision int64
}

// TemplateVersion is one immutable version of a template, in one locale.
type TemplateVersion struct {
	Version   int
	Locale    string
	Subject   string
	Text      string
	HTML      string
	Active    bool
	CreatedAt time.Time
}

// TemplatePatch changes a template's settings; nil fields are left alone.
type TemplatePatch struct {
	Name          *string
	Category      *message.Category
	DefaultLocale *string
	Variables     json.RawMessage
}

// Activation is what activating a version did.
type Activation struct {
	TemplateVersion
	Replaced int   // the version the locale sent before; 0: none
	Revision int64 // the template's new revision
}
