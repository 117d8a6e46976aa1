package domain

import "time"

// KeyKind says what an API key may do.
type KeyKind string

// Key kinds: a tenant key acts for its own tenant; a service key acts for the tenant named in
// X-Tenant-Id (internal services such as login/OTP); an admin key manages the platform.
const (
	KindTenant  KeyKind = "tenant"
	KindService KeyKind = "service"
	KindAdmin   KeyKind = "admin"
)

// Valid reports whether k is a known kind.
func (k KeyKind) Valid() bool { return k == KindTenant || k == KindService || k == KindAdmin }

// APIKey is a stored key: never the key itself, only its hash and a display prefix.
type APIKey struct {
	ID        string
	TenantID  string
	Kind      KeyKind
	Name      string
	Prefix    string
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
	// LastUsedAt is when the key last authenticated a request, to within a minute.
	LastUsedAt *time.Time
}

// Active reports whether the key may be used at now.
func (k APIKey) Active(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}
