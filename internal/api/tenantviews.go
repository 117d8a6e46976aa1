package api

import (
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// The admin API's tenant and key resources, spelt apart from domain's types so that neither a
// column nor a field of the domain changes the public JSON by accident (docs/openapi.json and
// the spec test hold it).

// Tenant is a tenant as GET /admin/tenants shows it.
type Tenant struct {
	ID                  string                    `json:"id"`
	Name                string                    `json:"name"`
	Plan                string                    `json:"plan"`
	AllowSystemFallback bool                      `json:"allow_system_fallback"`
	MaxAttempts         int                       `json:"max_attempts"`
	MaxRetryAgeSeconds  int64                     `json:"max_retry_age_seconds"`
	RatePerSecond       float64                   `json:"rate_per_second"`
	RateBurst           int                       `json:"rate_burst"`
	FallbackCategories  []string                  `json:"fallback_categories"`
	Quotas              map[message.Channel]Quota `json:"quotas"`
	// ContentRetentionSeconds is how long message subjects and bodies are kept (0: until final).
	ContentRetentionSeconds int64 `json:"content_retention_seconds"`
	// HistoryRetentionSeconds is how long messages and everything about them are kept;
	// AuditRetentionSeconds how long audit entries are.
	HistoryRetentionSeconds int64 `json:"history_retention_seconds"`
	AuditRetentionSeconds   int64 `json:"audit_retention_seconds"`
	// UnsubscribeMailto is offered in List-Unsubscribe beside the signed link ("": none).
	UnsubscribeMailto string `json:"unsubscribe_mailto"`
	// InboxOrigins may call the inbox routes from a browser (CORS).
	InboxOrigins []string  `json:"inbox_origins"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
}

// Quota is one channel's monthly limits.
type Quota struct {
	SoftLimit int64 `json:"soft_limit"`
	HardLimit int64 `json:"hard_limit"`
}

// TenantView is t as the API shows it.
func TenantView(t domain.Tenant) Tenant {
	quotas := make(map[message.Channel]Quota, len(t.Quotas))
	for ch, q := range t.Quotas {
		quotas[ch] = Quota{SoftLimit: q.SoftLimit, HardLimit: q.HardLimit}
	}
	return Tenant{ID: t.ID, Name: t.Name, Plan: t.Plan, AllowSystemFallback: t.AllowSystemFallback, MaxAttempts: t.MaxAttempts,
		MaxRetryAgeSeconds: t.MaxRetryAgeSeconds, RatePerSecond: t.RatePerSecond, RateBurst: t.RateBurst,
		FallbackCategories: t.FallbackCategories, Quotas: quotas, ContentRetentionSeconds: t.ContentRetentionSeconds,
		HistoryRetentionSeconds: t.HistoryRetentionSeconds, AuditRetentionSeconds: t.AuditRetentionSeconds,
		UnsubscribeMailto: t.UnsubscribeMailto, InboxOrigins: t.InboxOrigins, Status: string(t.Status), CreatedAt: t.CreatedAt}
}

// TenantPatch is the body of PATCH /admin/tenants/{id}; absent fields are left alone.
type TenantPatch struct {
	Name                *string `json:"name"`
	Plan                *string `json:"plan"`
	AllowSystemFallback *bool   `json:"allow_system_fallback"`
	MaxAttempts         *int    `json:"max_attempts"`
	MaxRetryAgeSeconds  *int64  `json:"max_retry_age_seconds"`
	// ContentRetentionSeconds changes how long message content is kept, from now on.
	ContentRetentionSeconds *int64 `json:"content_retention_seconds"`
	// HistoryRetentionSeconds and AuditRetentionSeconds change how long messages and audit
	// entries are kept, from now on.
	HistoryRetentionSeconds *int64   `json:"history_retention_seconds"`
	AuditRetentionSeconds   *int64   `json:"audit_retention_seconds"`
	RatePerSecond           *float64 `json:"rate_per_second"`
	RateBurst               *int     `json:"rate_burst"`
	FallbackCategories      []string `json:"fallback_categories"`
	Status                  *string  `json:"status"`
	// Quotas sets each channel named; null removes a channel's quota.
	Quotas            map[string]*Quota `json:"quotas"`
	UnsubscribeMailto *string           `json:"unsubscribe_mailto"`
}

func (p TenantPatch) domain() domain.TenantPatch {
	out := domain.TenantPatch{Name: p.Name, Plan: p.Plan, AllowSystemFallback: p.AllowSystemFallback, MaxAttempts: p.MaxAttempts,
		MaxRetryAgeSeconds: p.MaxRetryAgeSeconds, ContentRetentionSeconds: p.ContentRetentionSeconds,
		HistoryRetentionSeconds: p.HistoryRetentionSeconds, AuditRetentionSeconds: p.AuditRetentionSeconds, RatePerSecond: p.RatePerSecond, RateBurst: p.RateBurst,
		FallbackCategories: p.FallbackCategories, Status: (*domain.TenantStatus)(p.Status), UnsubscribeMailto: p.UnsubscribeMailto}
	if p.Quotas != nil {
		out.Quotas = make(map[string]*domain.Quota, len(p.Quotas))
		for ch, q := range p.Quotas {
			if q == nil {
				out.Quotas[ch] = nil
				continue
			}
			out.Quotas[ch] = &domain.Quota{SoftLimit: q.SoftLimit, HardLimit: q.HardLimit}
		}
	}
	return out
}

// APIKey is a key as the API shows it: never the key itself.
type APIKey struct {
	ID         string         `json:"id"`
	TenantID   string         `json:"tenant_id,omitempty"`
	Kind       domain.KeyKind `json:"kind"`
	Name       string         `json:"name"`
	Prefix     string         `json:"prefix"`
	CreatedAt  time.Time      `json:"created_at"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	RevokedAt  *time.Time     `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time     `json:"last_used_at,omitempty"`
}

// KeyView is k as the API shows it.
func KeyView(k domain.APIKey) APIKey {
	return APIKey{ID: k.ID, TenantID: k.TenantID, Kind: k.Kind, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

// Views maps each of xs with view (TenantView, KeyView, EndpointView…): a list as the API shows it.
func Views[T, V any](xs []T, view func(T) V) []V {
	out := make([]V, len(xs))
	for i, x := range xs {
		out[i] = view(x)
	}
	return out
}

// SettingsPatch is the body of PATCH /v1/settings: what a tenant changes of its own settings
// (the rest are its operator's, at PATCH /admin/tenants/{id}).
type SettingsPatch struct {
	UnsubscribeMailto *string   `json:"unsubscribe_mailto"`
	InboxOrigins      *[]string `json:"inbox_origins"`
}
