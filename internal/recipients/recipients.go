// Package recipients is what comms knows of the people it sends to on a tenant's behalf: the
// suppression list, the addresses a tenant does not send to on a channel (bounces and complaints
// add to it from callbacks; tenants add and lift entries by hand), and the erasure of a person
// from a tenant's history (retention.Eraser does the work).
package recipients

import (
	"context"
	"strings"

	"github.com/logicspike/comms/internal/domain"
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
}

// Service manages recipients.
type Service struct{ store Store }

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
