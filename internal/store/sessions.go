package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/logicspike/comms/internal/domain"
)

// CreateSession stores a session for keyID under token (only its hash is kept) until expires.
func (s *Store) CreateSession(ctx context.Context, token, keyID, csrf string, expires time.Time) error {
	h := sha256.Sum256([]byte(token))
	if _, err := s.pool.Exec(ctx, `
		WITH gone AS (DELETE FROM communication.dashboard_sessions WHERE expires_at < now())
		INSERT INTO communication.dashboard_sessions (token_hash, key_id, csrf, expires_at) VALUES ($1, $2, $3, $4)`,
		h[:], keyID, csrf, expires); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSessionByToken returns the live session of token with its key as it is now, or ErrNotFound
// (unknown, expired, or its key revoked or expired).
func (s *Store) GetSessionByToken(ctx context.Context, token string) (domain.Session, error) {
	h := sha256.Sum256([]byte(token))
	var out domain.Session
	k := &out.Key
	err := s.pool.QueryRow(ctx, `
		SELECT k.id, coalesce(k.tenant_id, ''), k.kind, k.name, k.prefix, k.created_at, k.expires_at, k.revoked_at, k.last_used_at, s.csrf,
		       coalesce(t.status, '')
		FROM communication.dashboard_sessions s JOIN communication.api_keys k ON k.id = s.key_id
		LEFT JOIN communication.tenants t ON t.id = k.tenant_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, h[:]).
		Scan(&k.ID, &k.TenantID, &k.Kind, &k.Name, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt, &out.CSRF, &out.TenantStatus)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Session{}, ErrNotFound
	}
	if err != nil {
		return domain.Session{}, fmt.Errorf("look up session: %w", err)
	}
	if !k.Active(time.Now()) {
		return domain.Session{}, ErrNotFound
	}
	return out, nil
}

// DeleteSession ends the session of token.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	h := sha256.Sum256([]byte(token))
	if _, err := s.pool.Exec(ctx, `DELETE FROM communication.dashboard_sessions WHERE token_hash = $1`, h[:]); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
