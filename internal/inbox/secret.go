package inbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// A token the tenant's backend signs with its inbox secret (docs/inbox.md#tokens-your-backend-signs):
//
//	t1.<tenant id>.<recipient id>.<expiry, Unix seconds>.<base64url HMAC-SHA256 of what precedes the last dot>
//
// keyed with the secret as given (its bytes, isk_ prefix and all). The recipient id may hold dots
// itself: the tenant id is the second part, the expiry and MAC the last two.
const tenantTokenPrefix = "t1."

// Bounds of tenant-signed tokens.
const (
	// MaxTenantTokenTTL is how far ahead a tenant-signed token may expire.
	MaxTenantTokenTTL = 7 * 24 * time.Hour
	// PreviousSecretGrace is how long the secret a rotation replaced stays valid.
	PreviousSecretGrace = 24 * time.Hour
	// SecretCacheTTL is how long a process keeps a tenant's opened secrets: a rotation or removal
	// elsewhere reaches it within this.
	SecretCacheTTL = 30 * time.Second
)

// SecretAAD binds a sealed secret to its tenant.
func SecretAAD(tenantID string) []byte { return []byte("inbox secret|" + tenantID) }

// RotateSecret makes a new inbox secret for tenantID and returns it: shown once, never again. The
// secret it replaces stays valid for PreviousSecretGrace, from previousUntil.
func (s *Service) RotateSecret(ctx context.Context, tenantID string) (secret string, previousUntil *time.Time, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	secret = "isk_" + base64.RawURLEncoding.EncodeToString(b)
	version, sealed, err := s.ring.Seal([]byte(secret), SecretAAD(tenantID))
	if err != nil {
		return "", nil, fmt.Errorf("seal the inbox secret: %w", err)
	}
	x, err := s.store.RotateInboxSecret(ctx, tenantID, version, sealed)
	if err != nil {
		return "", nil, err
	}
	s.secrets.Drop(tenantID)
	if x.PreviousVersion != "" {
		until := x.RotatedAt.Add(PreviousSecretGrace).UTC()
		previousUntil = &until
	}
	return secret, previousUntil, nil
}

// RemoveSecret removes tenantID's inbox secrets: tokens they signed stop working (within
// SecretCacheTTL on other processes). store.ErrNotFound: there are none.
func (s *Service) RemoveSecret(ctx context.Context, tenantID string) error {
	err := s.store.DeleteInboxSecret(ctx, tenantID)
	s.secrets.Drop(tenantID)
	return err
}

// verifyTenantSigned checks a token signed with its tenant's inbox secret.
func (s *Service) verifyTenantSigned(ctx context.Context, token string, now time.Time) (Reader, error) {
	parts := strings.Split(token, ".")
	if len(parts) < 5 || len(token) > 2048 {
		return Reader{}, ErrInvalidToken
	}
	tenantID, expRaw, mac := parts[1], parts[len(parts)-2], parts[len(parts)-1]
	recipientID := strings.Join(parts[2:len(parts)-2], ".")
	exp, err := strconv.ParseInt(expRaw, 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) || time.Unix(exp, 0).After(now.Add(MaxTenantTokenTTL)) ||
		message.CheckRecipientID(recipientID) != "" || !strings.HasPrefix(tenantID, "ten_") {
		return Reader{}, ErrInvalidToken
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return Reader{}, ErrInvalidToken
	}
	keys, err := s.secrets.Get(ctx, tenantID, "inbox-secret", func(ctx context.Context) ([][]byte, error) {
		return s.openSecrets(ctx, tenantID, now)
	})
	if err != nil {
		return Reader{}, err
	}
	signed := token[:len(token)-len(mac)-1]
	for _, k := range keys {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(signed))
		if hmac.Equal(h.Sum(nil), got) {
			return Reader{TenantID: tenantID, RecipientID: recipientID, ExpiresAt: time.Unix(exp, 0).UTC()}, nil
		}
	}
	return Reader{}, ErrInvalidToken
}

// openSecrets are the secrets tenantID's tokens may be signed with now: the current one, and the
// previous within its grace.
func (s *Service) openSecrets(ctx context.Context, tenantID string, now time.Time) ([][]byte, error) {
	x, err := s.store.GetInboxSecrets(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cur, err := s.ring.Open(x.Version, x.Sealed, SecretAAD(tenantID))
	if err != nil {
		return nil, fmt.Errorf("open the inbox secret of %s: %w", tenantID, err)
	}
	out := [][]byte{cur}
	if x.PreviousVersion != "" && now.Before(x.RotatedAt.Add(PreviousSecretGrace)) {
		if prev, err := s.ring.Open(x.PreviousVersion, x.PreviousSealed, SecretAAD(tenantID)); err == nil {
			out = append(out, prev)
		}
	}
	return out, nil
}
