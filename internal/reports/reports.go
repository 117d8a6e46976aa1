// Package reports reads what comms did for a tenant: deliveries over time, provider errors,
// usage and cost, the quota used this month, the billing export and the audit log. It changes
// nothing; the flows that send write what it reads.
package reports

import (
	"context"
	"io"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what reports read; *store.Store implements it.
type Store interface {
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
	GetTimeseries(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time, interval string) ([]domain.Bucket, error)
	ListProviderErrors(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time) ([]domain.ProviderErrorCount, error)
	GetUsage(ctx context.Context, tenantID string, from, to time.Time, groupBy []string) ([]domain.UsageRow, domain.Counters, error)
	GetQuotaUsed(ctx context.Context, tenantID string, ch message.Channel, month time.Time) (int64, error)
	ExportMessages(ctx context.Context, w io.Writer, tenantID string, month time.Time) (int64, error)
	ListAudit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEntry, string, error)
}

// Service answers reports.
type Service struct {
	store Store
	now   func() time.Time
}

// New returns the service.
func New(s Store) *Service {
	return &Service{store: s, now: time.Now}
}

// Timeseries is a tenant's delivery counts per interval, and their totals.
type Timeseries struct {
	Buckets []domain.Bucket
	Totals  domain.Bucket // Start is the first bucket's
}

// Timeseries counts tenantID's deliveries on ch ("" for every channel) per interval ("hour" or
// "day", UTC) in [from, to), read from the hourly rollup. A message counts in the bucket of its
// event: sent when the provider accepted it (or, in_app, when it reached the inbox), delivered
// when the provider reported delivery, read when its recipient first read it in the inbox.
func (s *Service) Timeseries(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time, interval string) (Timeseries, error) {
	buckets, err := s.store.GetTimeseries(ctx, tenantID, ch, from, to, interval)
	if err != nil {
		return Timeseries{}, err
	}
	ts := Timeseries{Buckets: buckets}
	for _, b := range buckets {
		ts.Totals.Sent += b.Sent
		ts.Totals.Delivered += b.Delivered
		ts.Totals.Opened += b.Opened
		ts.Totals.Clicked += b.Clicked
		ts.Totals.Bounced += b.Bounced
		ts.Totals.Complained += b.Complained
		ts.Totals.Failed += b.Failed
		ts.Totals.Read += b.Read
	}
	if len(buckets) > 0 {
		ts.Totals.Start = buckets[0].Start
	}
	return ts, nil
}

// ProviderErrors counts tenantID's provider errors in [from, to) by provider config and
// normalized code, most frequent first, each with the latest provider message.
func (s *Service) ProviderErrors(ctx context.Context, tenantID string, ch message.Channel, from, to time.Time) ([]domain.ProviderErrorCount, error) {
	return s.store.ListProviderErrors(ctx, tenantID, ch, from, to)
}

// Usage returns tenantID's usage and cost on the UTC days [from, to], grouped by groupBy (names
// from store.UsageDimensions, in the order given), and the totals.
func (s *Service) Usage(ctx context.Context, tenantID string, from, to time.Time, groupBy []string) ([]domain.UsageRow, domain.Counters, error) {
	return s.store.GetUsage(ctx, tenantID, from, to, groupBy)
}

// QuotaState is one channel's quota this month.
type QuotaState struct {
	Channel   message.Channel
	Warning   int64 // the soft limit, or the warning level derived from the hard one
	Limit     int64
	Used      int64
	Remaining int64
	ResetsAt  time.Time
}

// Quotas returns tenantID's quotas with this month's use, one per channel that has a hard
// limit. It reads the tenant, not a cache: a change shows at once.
func (s *Service) Quotas(ctx context.Context, tenantID string) ([]QuotaState, error) {
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	month := store.MonthStart(s.now())
	out := []QuotaState{}
	for _, ch := range []message.Channel{message.Email, message.SMS} {
		q, ok := t.Quotas[ch]
		if !ok || q.HardLimit <= 0 {
			continue
		}
		used, err := s.store.GetQuotaUsed(ctx, t.ID, ch, month)
		if err != nil {
			return nil, err
		}
		out = append(out, QuotaState{Channel: ch, Warning: q.Warning(), Limit: q.HardLimit, Used: used,
			Remaining: max(q.HardLimit-used, 0), ResetsAt: month.AddDate(0, 1, 0)})
	}
	return out, nil
}

// Export writes the billing export of month (every tenant's, or tenantID's) to w as CSV and
// returns how many messages it wrote.
func (s *Service) Export(ctx context.Context, w io.Writer, tenantID string, month time.Time) (int64, error) {
	return s.store.ExportMessages(ctx, w, tenantID, month)
}

// Audit returns audit entries f selects, newest first, after the cursor of a previous page, and
// the cursor of the next page ("" at the end).
func (s *Service) Audit(ctx context.Context, f domain.AuditFilter, cursor string, limit int) ([]domain.AuditEntry, string, error) {
	return s.store.ListAudit(ctx, f, cursor, limit)
}
