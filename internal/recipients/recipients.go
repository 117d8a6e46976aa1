// Package recipients is what comms knows of the people it sends to on a tenant's behalf: today
// the suppression list, the addresses a tenant does not send to on a channel (bounces and
// complaints add to it from callbacks; tenants add and lift entries by hand).
package recipients

import (
	"context"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what recipients keep in the database; *store.Store implements it.
type Store interface {
	ListSuppressions(ctx context.Context, tenantID string, f domain.SuppressionFilter) ([]domain.Suppression, string, error)
	AddSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient, detail string) (domain.Suppression, error)
	DeleteSuppression(ctx context.Context, tenantID string, ch message.Channel, recipient string) error
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
