// Package inbox is a recipient's in-app inbox (docs/inbox.md): the in_app messages sent to a
// recipient profile, read by the tenant's frontend with a recipient token rather than an API key,
// so that a browser reads only its own person's inbox.
//
// A recipient token names a tenant, a recipient and an expiry, signed with a key derived from
// COMMS_ENCRYPTION_KEYS (secrets.Ring.SignToken): the tenant's backend asks for one with its API
// key (POST /v1/recipients/{id}/inbox-tokens) and hands it to the person's browser. Or the
// tenant's backend signs one itself with its inbox secret (secret.go), with no call to comms.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tenantcache"
)

// Token lifetimes.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 24 * time.Hour
)

const purpose = "inbox token"

// ErrInvalidToken is a token this deployment did not sign, an altered or expired one.
var ErrInvalidToken = errors.New("not a valid, unexpired recipient token")

// Reader is whose inbox a request reads: a verified recipient token's.
type Reader struct {
	TenantID, RecipientID string
	ExpiresAt             time.Time
}

// Store is what the inbox reads and writes; *store.Store implements it.
type Store interface {
	GetRecipient(ctx context.Context, tenantID, externalID string) (domain.Recipient, error)
	ListInbox(ctx context.Context, tenantID, recipientID string, f domain.InboxFilter) (domain.InboxPage, error)
	MarkInbox(ctx context.Context, tenantID, recipientID, id string, action domain.InboxAction) (domain.InboxItem, error)
	GetInboxItem(ctx context.Context, tenantID, recipientID, id string) (domain.InboxItem, error)
	ReadAllInbox(ctx context.Context, tenantID, recipientID string) (int64, error)
	RotateInboxSecret(ctx context.Context, tenantID, version string, sealed []byte) (domain.InboxSecrets, error)
	GetInboxSecrets(ctx context.Context, tenantID string) (domain.InboxSecrets, error)
	DeleteInboxSecret(ctx context.Context, tenantID string) error
}

// Service issues recipient tokens and serves inboxes.
type Service struct {
	store   Store
	ring    *secrets.Ring
	hub     *Hub                         // nil: no live streams
	secrets *tenantcache.Cache[[][]byte] // tenants' opened inbox secrets
}

// New returns the inbox service.
func New(st Store, ring *secrets.Ring) *Service {
	return &Service{store: st, ring: ring, secrets: tenantcache.New[[][]byte](SecretCacheTTL)}
}

// WithHub serves live streams through h.
func (s *Service) WithHub(h *Hub) *Service {
	s.hub = h
	return s
}

// Open registers a live stream on r's inbox (Hub.Open); ok is false when this process serves
// none (no hub, or shutting down).
func (s *Service) Open(r Reader) (arrivals <-chan Arrival, done func(), ok bool) {
	if s.hub == nil {
		return nil, nil, false
	}
	return s.hub.Open(r)
}

// Item is one message of r's inbox. store.ErrNotFound: not in r's inbox.
func (s *Service) Item(ctx context.Context, r Reader, id string) (domain.InboxItem, error) {
	return s.store.GetInboxItem(ctx, r.TenantID, r.RecipientID, id)
}

// IssueToken signs a token for tenantID's recipient profile recipientID, valid for ttl (0: the
// default). store.ErrNotFound: no such profile.
func (s *Service) IssueToken(ctx context.Context, tenantID, recipientID string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if _, err := s.store.GetRecipient(ctx, tenantID, recipientID); err != nil {
		return "", time.Time{}, err
	}
	exp := time.Now().Add(min(ttl, MaxTokenTTL)).Truncate(time.Second)
	return s.ring.SignToken(purpose, tenantID, recipientID, strconv.FormatInt(exp.Unix(), 10)), exp, nil
}

// Verify returns whose inbox token opens, or ErrInvalidToken: a token comms signed
// (IssueToken), or one the tenant's backend signed with its inbox secret (RotateSecret).
func (s *Service) Verify(ctx context.Context, token string, now time.Time) (Reader, error) {
	if strings.HasPrefix(token, tenantTokenPrefix) {
		return s.verifyTenantSigned(ctx, token, now)
	}
	f, ok := s.ring.OpenToken(purpose, token, 3)
	if !ok {
		return Reader{}, ErrInvalidToken
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return Reader{}, ErrInvalidToken
	}
	return Reader{TenantID: f[0], RecipientID: f[1], ExpiresAt: time.Unix(exp, 0).UTC()}, nil
}

// Page is a page of r's inbox.
func (s *Service) Page(ctx context.Context, r Reader, f domain.InboxFilter) (domain.InboxPage, error) {
	return s.store.ListInbox(ctx, r.TenantID, r.RecipientID, f)
}

// Mark records that r saw, read or archived its message id. store.ErrNotFound: no such message
// in r's inbox.
func (s *Service) Mark(ctx context.Context, r Reader, id string, action domain.InboxAction) (domain.InboxItem, error) {
	switch action {
	case domain.InboxSeen, domain.InboxRead, domain.InboxArchived:
	default:
		return domain.InboxItem{}, fmt.Errorf("inbox: no action %q", action)
	}
	return s.store.MarkInbox(ctx, r.TenantID, r.RecipientID, id, action)
}

// ReadAll marks every message of r's inbox read, and returns how many were unread.
func (s *Service) ReadAll(ctx context.Context, r Reader) (int64, error) {
	return s.store.ReadAllInbox(ctx, r.TenantID, r.RecipientID)
}
