package domain

import "time"

// Recipient is a person a tenant sends to, by the tenant's own id for them.
type Recipient struct {
	ExternalID string
	Email      string // '' when the profile has none
	Phone      string // E.164; '' when none
	Locale     string // canonical BCP 47 (en, pt-BR); '' when none
	Timezone   string // IANA (Europe/Lisbon); '' when none
	Data       []byte // a JSON object
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// RecipientPatch changes a profile; nil fields are left alone, an empty string clears one, and
// Data replaces the whole object.
type RecipientPatch struct {
	Email, Phone, Locale, Timezone *string
	Data                           []byte
}

// RecipientFilter narrows ListRecipients.
type RecipientFilter struct {
	Cursor string // the last external id of the previous page
	Limit  int
	// Find keeps the profiles with this id, email address (any case) or phone number ("": all).
	Find string
}
