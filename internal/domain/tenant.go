// Package domain holds the types the flows share, apart from how the store's rows and the API's
// responses spell them: the store maps rows to these, the API maps these to its responses, so a
// column can change without changing the public JSON, and the other way round. The rules that
// belong to a type (a patch's validation, a key's activity) live here with it.
package domain

import (
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Tenant is one seller on the platform.
type Tenant struct {
	ID                  string
	Name                string
	Plan                string
	AllowSystemFallback bool
	MaxAttempts         int     // provider attempts per message before it is dead-lettered
	MaxRetryAgeSeconds  int64   // no retry is scheduled past this age
	RatePerSecond       float64 // intake token bucket: refill rate (0: unlimited)
	RateBurst           int     // and size
	// FallbackCategories are the message categories that may use the system default (with
	// AllowSystemFallback); default transactional only.
	FallbackCategories []string
	// Quotas are the monthly limits per channel (docs/usage.md#quotas); a channel absent has none.
	Quotas Quotas
	// ContentRetentionSeconds is how long a message's subject and bodies are kept after it was
	// created (0: until the message is final); then the content purger blanks them.
	ContentRetentionSeconds int64
	// HistoryRetentionSeconds is how long a message and everything about it (events, callbacks,
	// dead letters, webhook deliveries) are kept after it was created; then the history purger
	// deletes them. AuditRetentionSeconds is the same for the tenant's audit entries.
	HistoryRetentionSeconds int64
	AuditRetentionSeconds   int64
	// UnsubscribeMailto is the tenant's mailbox for unsubscribe requests by email: List-Unsubscribe
	// then offers it beside the signed link ("": the link only).
	UnsubscribeMailto string
	// InboxOrigins are the web origins ("https://app.acme.example") whose pages may call the
	// inbox routes: they get CORS headers.
	InboxOrigins []string
	Status       TenantStatus
	CreatedAt    time.Time
}

// MaxContentRetentionSeconds bounds the retentions: ten years.
const MaxContentRetentionSeconds = 3650 * 86400

// The shortest history and audit retentions.
const (
	MinHistoryRetentionSeconds = 86400      // a day
	MinAuditRetentionSeconds   = 30 * 86400 // 30 days
)

// HistoryExpired reports whether something made at is past the tenant's history retention at now.
func (t Tenant) HistoryExpired(at, now time.Time) bool {
	return at.Before(now.Add(-time.Duration(t.HistoryRetentionSeconds) * time.Second))
}

// MayUse reports whether a message of the tenant's in a category of kind (transactional or
// marketing) may be sent through cfg: its own configs always, the system defaults when the
// tenant falls back to them for that kind.
func (t Tenant) MayUse(cfg ProviderConfig, kind message.Category) bool {
	return cfg.TenantID != "" || t.AllowSystemFallback && slices.Contains(t.FallbackCategories, string(kind))
}

// TenantStatus is whether a tenant may act.
type TenantStatus string

// A tenant is active, or suspended: its keys are refused (403) and its dashboard sessions end.
const (
	TenantActive    TenantStatus = "active"
	TenantSuspended TenantStatus = "suspended"
)

// NewTenant is what creating a tenant takes.
type NewTenant struct {
	Name                string
	Plan                string
	AllowSystemFallback bool
}

// TenantPatch changes a tenant's settings; nil fields are left alone.
type TenantPatch struct {
	Name                *string
	Plan                *string
	AllowSystemFallback *bool
	MaxAttempts         *int
	MaxRetryAgeSeconds  *int64
	// ContentRetentionSeconds changes how long message content is kept, from now on (content
	// already purged does not come back).
	ContentRetentionSeconds *int64
	// HistoryRetentionSeconds and AuditRetentionSeconds change how long messages and audit
	// entries are kept, from now on (what was deleted does not come back).
	HistoryRetentionSeconds *int64
	AuditRetentionSeconds   *int64
	RatePerSecond           *float64
	RateBurst               *int
	FallbackCategories      []string
	Status                  *TenantStatus
	// Quotas sets each channel named; null removes a channel's quota.
	Quotas            map[string]*Quota
	UnsubscribeMailto *string // "" removes it
	InboxOrigins      *[]string
}

// MaxInboxOrigins bounds a tenant's inbox origins.
const MaxInboxOrigins = 20

var webOrigin = regexp.MustCompile(`^(https://[a-z0-9.-]+|http://(localhost|127\.0\.0\.1))(:[0-9]{1,5})?$`)

// Validate names each bad field.
func (p TenantPatch) Validate() []message.FieldError {
	var errs []message.FieldError
	add := func(f, m string) { errs = append(errs, message.FieldError{Field: f, Message: m}) }
	if p.Name != nil && (*p.Name == "" || len(*p.Name) > 200) {
		add("name", "must be 1 to 200 characters")
	}
	if p.MaxAttempts != nil && (*p.MaxAttempts < 1 || *p.MaxAttempts > 50) {
		add("max_attempts", "must be from 1 to 50")
	}
	if p.ContentRetentionSeconds != nil && (*p.ContentRetentionSeconds < 0 || *p.ContentRetentionSeconds > MaxContentRetentionSeconds) {
		add("content_retention_seconds", "must be from 0 (until the message is final) to 315360000 (10 years)")
	}
	if p.HistoryRetentionSeconds != nil && (*p.HistoryRetentionSeconds < MinHistoryRetentionSeconds || *p.HistoryRetentionSeconds > MaxContentRetentionSeconds) {
		add("history_retention_seconds", "must be from 86400 (a day) to 315360000 (10 years)")
	}
	if p.AuditRetentionSeconds != nil && (*p.AuditRetentionSeconds < MinAuditRetentionSeconds || *p.AuditRetentionSeconds > MaxContentRetentionSeconds) {
		add("audit_retention_seconds", "must be from 2592000 (30 days) to 315360000 (10 years)")
	}
	if p.MaxRetryAgeSeconds != nil && (*p.MaxRetryAgeSeconds < 60 || *p.MaxRetryAgeSeconds > 7*86400) {
		add("max_retry_age_seconds", "must be from 60 to 604800 (7 days)")
	}
	if p.RatePerSecond != nil && (*p.RatePerSecond < 0 || *p.RatePerSecond > 1e6) {
		add("rate_per_second", "must be from 0 (unlimited) to 1000000")
	}
	if p.RateBurst != nil && (*p.RateBurst < 0 || *p.RateBurst > 10_000_000) {
		add("rate_burst", "must be from 0 to 10000000")
	}
	for _, c := range p.FallbackCategories {
		if c != string(message.Transactional) && c != string(message.Marketing) {
			add("fallback_categories", `may list only "transactional" and "marketing"`)
			break
		}
	}
	if m := p.UnsubscribeMailto; m != nil && *m != "" {
		if a, err := mail.ParseAddress(*m); err != nil || a.Name != "" || a.Address != *m || len(*m) > 254 || !strings.Contains(*m, "@") {
			add("unsubscribe_mailto", "must be a bare email address such as unsubscribe@acme.example (no display name), or empty to remove it")
		}
	}
	if o := p.InboxOrigins; o != nil {
		if len(*o) > MaxInboxOrigins {
			add("inbox_origins", fmt.Sprintf("may list at most %d origins", MaxInboxOrigins))
		}
		for i, v := range *o {
			if !webOrigin.MatchString(v) {
				add(fmt.Sprintf("inbox_origins[%d]", i), `must be an origin such as "https://app.acme.example" (https, lower case, no path; http only for localhost)`)
			}
		}
	}
	if p.Status != nil && *p.Status != TenantActive && *p.Status != TenantSuspended {
		add("status", `must be "active" or "suspended"`)
	}
	for ch, q := range p.Quotas {
		f := "quotas." + ch
		switch {
		case !message.Channel(ch).Valid():
			add(f, `must be "sms" or "email"`)
		case q == nil:
		case q.HardLimit < 0 || q.SoftLimit < 0 || q.HardLimit > MaxQuota || q.SoftLimit > MaxQuota:
			add(f, "limits must be from 0 (none) to 1000000000000")
		case q.HardLimit > 0 && q.SoftLimit > q.HardLimit:
			add(f+".soft_limit", "must not exceed hard_limit")
		}
	}
	return errs
}

// MaxQuota bounds a limit: far above any month, far below overflow.
const MaxQuota = 1_000_000_000_000

// Quota is one channel's monthly limits, in messages for email and segments for SMS (0: none).
type Quota struct {
	// SoftLimit warns (comms.quota.warning); 0 means 80% of HardLimit.
	SoftLimit int64
	// HardLimit refuses intake beyond it (429 quota-exceeded); 0 means no limit.
	HardLimit int64
}

// Warning is where the warning fires: the soft limit, else 80% of the hard one.
func (q Quota) Warning() int64 {
	if q.SoftLimit > 0 {
		return q.SoftLimit
	}
	return q.HardLimit * 8 / 10
}

// Quotas are a tenant's quotas by channel.
type Quotas map[message.Channel]Quota

// Plan is a plan's retention defaults: a tenant takes them when it is created on the plan or
// moved to it. Nil: the global default at creation, the tenant's own on a move.
type Plan struct {
	Name                                                                    string
	ContentRetentionSeconds, HistoryRetentionSeconds, AuditRetentionSeconds *int64
	UpdatedAt                                                               time.Time
}

// Validate names each bad field.
func (p Plan) Validate() []message.FieldError {
	errs := TenantPatch{ContentRetentionSeconds: p.ContentRetentionSeconds, HistoryRetentionSeconds: p.HistoryRetentionSeconds,
		AuditRetentionSeconds: p.AuditRetentionSeconds}.Validate()
	if !planName.MatchString(p.Name) {
		errs = append(errs, message.FieldError{Field: "name", Message: "must be 1 to 40 lower-case letters, digits, '_' or '-'"})
	}
	return errs
}

var planName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)
