// Package recipients is what comms knows of the people it sends to on a tenant's behalf: the
// suppression list, the addresses a tenant does not send to on a channel (bounces and complaints
// add to it from callbacks; tenants add and lift entries by hand), and the erasure of a person
// from a tenant's history (retention.Eraser does the work).
package recipients

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what recipients keep in the database; *store.Store implements it.
type Store interface {
	ListSuppressions(ctx context.Context, tenantID string, f domain.SuppressionFilter) ([]domain.Suppression, string, error)
	AddSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient, detail string) (domain.Suppression, error)
	DeleteSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient string) error
	CreateErasure(ctx context.Context, id, tenantID string, ch message.Channel, recipient string) (domain.Erasure, bool, error)
	GetErasure(ctx context.Context, tenantID, id string) (domain.Erasure, error)
	ListErasures(ctx context.Context, tenantID string, f domain.ErasureFilter) ([]domain.Erasure, string, error)
	PutRecipient(ctx context.Context, tenantID string, x domain.Recipient) (domain.Recipient, bool, error)
	GetRecipient(ctx context.Context, tenantID, externalID string) (domain.Recipient, error)
	UpdateRecipient(ctx context.Context, tenantID, externalID string, p domain.RecipientPatch) (domain.Recipient, error)
	DeleteRecipient(ctx context.Context, tenantID, externalID string) error
	ListRecipients(ctx context.Context, tenantID string, f domain.RecipientFilter) ([]domain.Recipient, string, error)
	CreateCategory(ctx context.Context, tenantID string, c domain.Category) (domain.Category, error)
	ListCategories(ctx context.Context, tenantID string) ([]domain.Category, error)
	GetCategory(ctx context.Context, tenantID, key string) (domain.Category, error)
	UpdateCategory(ctx context.Context, tenantID, key string, p domain.CategoryPatch) (domain.Category, error)
	DeleteCategory(ctx context.Context, tenantID, key string) error
	PutDevice(ctx context.Context, tenantID string, d domain.Device, keep int) (domain.Device, bool, error)
	ListDevices(ctx context.Context, tenantID, recipientID string) ([]domain.Device, error)
	DeleteDevice(ctx context.Context, tenantID, recipientID, id string) error
	GetPreferences(ctx context.Context, tenantID string, who domain.PreferenceSubject) (domain.Preferences, error)
	ReplacePreferences(ctx context.Context, tenantID string, who domain.PreferenceSubject, p domain.Preferences) (domain.Preferences, error)
}

// Service manages recipients.
type Service struct {
	store         Store
	cats          *categories.Cache // nil: nothing caches categories
	allowHTTPPush bool
}

// New returns the service.
func New(s Store) *Service { return &Service{store: s} }

// Suppressions returns a page of tenantID's suppression list, newest first, and the next page's
// cursor. Errors: store.ErrBadCursor.
func (s *Service) Suppressions(ctx context.Context, tenantID string, f domain.SuppressionFilter) ([]domain.Suppression, string, error) {
	return s.store.ListSuppressions(ctx, tenantID, f)
}

// Suppress adds recipient on ch to tenantID's suppression list by hand (reason "manual").
func (s *Service) Suppress(ctx context.Context, tenantID string, ch message.Channel, recipient, detail string) (domain.Suppression, error) {
	return s.store.AddSuppression(ctx, tenantID, ch, recipient, detail)
}

// Unsuppress lifts a suppression, so the recipient can be sent to again. Errors:
// store.ErrNotFound.
func (s *Service) Unsuppress(ctx context.Context, tenantID string, ch message.Channel, recipient string) error {
	return s.store.DeleteSuppression(ctx, tenantID, ch, recipient)
}

// AddressChannel is the channel of an address: email when it has an @, SMS otherwise.
func AddressChannel(address string) message.Channel {
	if strings.Contains(address, "@") {
		return message.Email
	}
	return message.SMS
}

// Erase starts erasing address from tenantID's history (created true), or returns the erasure
// of that address already running (created false). The address's channel is AddressChannel's.
func (s *Service) Erase(ctx context.Context, tenantID, address string) (domain.Erasure, bool, error) {
	return s.store.CreateErasure(ctx, ids.New(ids.Erasure), tenantID, AddressChannel(address), address)
}

// Erasure returns one of tenantID's erasures. Errors: store.ErrNotFound.
func (s *Service) Erasure(ctx context.Context, tenantID, id string) (domain.Erasure, error) {
	return s.store.GetErasure(ctx, tenantID, id)
}

// Erasures returns a page of tenantID's erasures, newest first, and the next page's cursor.
func (s *Service) Erasures(ctx context.Context, tenantID string, f domain.ErasureFilter) ([]domain.Erasure, string, error) {
	return s.store.ListErasures(ctx, tenantID, f)
}

// MaxDataBytes bounds a profile's data.
const MaxDataBytes = 16 << 10

// ValidID names what is wrong with a recipient id, or returns "".
func ValidID(id string) string { return message.CheckRecipientID(id) }

// check validates and canonicalises a profile's fields, naming each bad one.
func check(email, phone, locale, timezone *string, data []byte) error {
	var bad []message.FieldError
	add := func(f, m string) { bad = append(bad, message.FieldError{Field: f, Message: m}) }
	if email != nil && *email != "" {
		if a, err := mail.ParseAddress(*email); err != nil || a.Address != *email || a.Name != "" {
			add("email", "must be a bare email address (ada@example.com)")
		} else if r := (message.Request{Channel: message.Email, To: *email, Subject: "x", Text: "x"}); r.Validate() != nil {
			add("email", "is not an address comms can send to")
		}
	}
	if phone != nil && *phone != "" {
		if r := (message.Request{Channel: message.SMS, To: *phone, Text: "x"}); r.Validate() != nil {
			add("phone", "must be an E.164 number (+14155550123)")
		}
	}
	if locale != nil && *locale != "" {
		loc, err := templates.CanonicalLocale(*locale)
		if err != nil {
			add("locale", err.Error())
		} else {
			*locale = loc
		}
	}
	if timezone != nil && *timezone != "" {
		if _, err := time.LoadLocation(*timezone); err != nil || *timezone == "Local" {
			add("timezone", "must be an IANA time zone (Europe/Lisbon, America/New_York)")
		}
	}
	if data != nil {
		var obj map[string]any
		if len(data) > MaxDataBytes {
			add("data", fmt.Sprintf("is at most %d bytes", MaxDataBytes))
		} else if json.Unmarshal(data, &obj) != nil || obj == nil {
			add("data", "must be a JSON object")
		}
	}
	if len(bad) > 0 {
		return &message.ValidationError{Fields: bad}
	}
	return nil
}

// Put creates or replaces tenantID's profile x (created true when it is new). Errors:
// *message.ValidationError naming each bad field.
func (s *Service) Put(ctx context.Context, tenantID string, x domain.Recipient) (domain.Recipient, bool, error) {
	if len(x.Data) == 0 {
		x.Data = []byte("{}")
	}
	if err := check(&x.Email, &x.Phone, &x.Locale, &x.Timezone, x.Data); err != nil {
		return domain.Recipient{}, false, err
	}
	return s.store.PutRecipient(ctx, tenantID, x)
}

// Profile returns one of tenantID's profiles. Errors: store.ErrNotFound.
func (s *Service) Profile(ctx context.Context, tenantID, externalID string) (domain.Recipient, error) {
	return s.store.GetRecipient(ctx, tenantID, externalID)
}

// Update applies p to one of tenantID's profiles. Errors: *message.ValidationError,
// store.ErrNotFound.
func (s *Service) Update(ctx context.Context, tenantID, externalID string, p domain.RecipientPatch) (domain.Recipient, error) {
	if err := check(p.Email, p.Phone, p.Locale, p.Timezone, p.Data); err != nil {
		return domain.Recipient{}, err
	}
	return s.store.UpdateRecipient(ctx, tenantID, externalID, p)
}

// Delete removes one of tenantID's profiles; the messages sent to it stay. Errors:
// store.ErrNotFound.
func (s *Service) Delete(ctx context.Context, tenantID, externalID string) error {
	return s.store.DeleteRecipient(ctx, tenantID, externalID)
}

// Profiles returns a page of tenantID's profiles in id order and the next page's cursor.
func (s *Service) Profiles(ctx context.Context, tenantID string, f domain.RecipientFilter) ([]domain.Recipient, string, error) {
	return s.store.ListRecipients(ctx, tenantID, f)
}
