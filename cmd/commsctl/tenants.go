package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/redis/go-redis/v9"
)

// Tenants: create, set, list.

func tenantCreate(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("tenant create", flag.ContinueOnError)
	name := fs.String("name", "", "tenant name (required)")
	plan := fs.String("plan", "free", "plan")
	noFallback := fs.Bool("no-fallback", false, "forbid the system-default providers for this tenant")
	if err := fs.Parse(args); err != nil || *name == "" {
		return errUsage
	}
	t, err := accounts.New(st, nil).CreateTenant(ctx, domain.NewTenant{Name: *name, Plan: *plan, AllowSystemFallback: !*noFallback})
	if err != nil {
		return describe(err)
	}
	return printJSON(out, api.TenantView(t))
}

func tenantSet(ctx context.Context, e *env, args []string) error {
	cfg, st, out := e.cfg, e.st, e.out
	fs := flag.NewFlagSet("tenant set", flag.ContinueOnError)
	var p domain.TenantPatch
	set := map[string]bool{}
	maxAttempts := fs.Int("max-attempts", 0, "provider attempts per message before dead-lettering")
	maxAge := fs.Duration("max-retry-age", 0, "no retry past this age of a message (e.g. 24h)")
	rate := fs.Float64("rate", 0, "intake messages per second (0: unlimited)")
	burst := fs.Int("burst", 0, "intake burst")
	fallback := fs.Bool("fallback", true, "may use the system default providers")
	status := fs.String("status", "", "active or suspended")
	contentRetention := fs.Duration("content-retention", 0, "keep message subjects and bodies this long (e.g. 720h; 0: until the message is final)")
	historyRetention := fs.Duration("history-retention", 0, "keep messages and everything about them this long (e.g. 2160h; 24h to 87600h)")
	auditRetention := fs.Duration("audit-retention", 0, "keep the tenant's audit entries this long (e.g. 9600h; 720h to 87600h)")
	limits := map[string]*int64{}
	for _, ch := range []string{"email", "sms"} {
		for _, l := range []string{"soft", "hard"} {
			limits["quota-"+ch+"-"+l] = fs.Int64("quota-"+ch+"-"+l, 0, "monthly "+l+" limit for "+ch+" (0: none; docs/usage.md#quotas)")
		}
	}
	if len(args) < 1 || fs.Parse(args[1:]) != nil {
		return errUsage
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, ch := range []string{"email", "sms"} {
		if set["quota-"+ch+"-soft"] || set["quota-"+ch+"-hard"] {
			if p.Quotas == nil {
				p.Quotas = map[string]*domain.Quota{}
			}
			p.Quotas[ch] = &domain.Quota{SoftLimit: *limits["quota-"+ch+"-soft"], HardLimit: *limits["quota-"+ch+"-hard"]}
		}
	}
	if set["max-attempts"] {
		p.MaxAttempts = maxAttempts
	}
	if set["max-retry-age"] {
		secs := int64(maxAge.Seconds())
		p.MaxRetryAgeSeconds = &secs
	}
	if set["rate"] {
		p.RatePerSecond = rate
	}
	if set["burst"] {
		p.RateBurst = burst
	}
	if set["fallback"] {
		p.AllowSystemFallback = fallback
	}
	if set["content-retention"] {
		secs := int64(contentRetention.Seconds())
		p.ContentRetentionSeconds = &secs
	}
	if set["history-retention"] {
		secs := int64(historyRetention.Seconds())
		p.HistoryRetentionSeconds = &secs
	}
	if set["audit-retention"] {
		secs := int64(auditRetention.Seconds())
		p.AuditRetentionSeconds = &secs
	}
	if set["status"] {
		p.Status = (*domain.TenantStatus)(status)
	}
	// Running workers are told at once; if Redis is unreachable they notice within their route TTL.
	rdb := redis.NewClient(cfg.Redis)
	defer rdb.Close()
	t, err := accounts.New(st, invalidate.NewNotifier(rdb, cfg.RedisPrefix, quiet())).UpdateTenant(ctx, args[0], p)
	if err != nil {
		return fmt.Errorf("update tenant %s: %w", args[0], describe(err))
	}
	return printJSON(out, api.TenantView(t))
}

func tenantList(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("tenant list", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	t := &table{header: "ID\tNAME\tPLAN\tFALLBACK\tSTATUS\tCREATED"}
	all := []domain.Tenant{}
	after := ""
	for {
		ts, err := accounts.New(st, nil).Tenants(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, tn := range ts {
			t.add(tn.ID, tn.Name, tn.Plan, tn.AllowSystemFallback, tn.Status, tn.CreatedAt)
		}
		all = append(all, ts...)
		if len(ts) < 500 {
			return emit(out, *format, api.Views(all, api.TenantView), t)
		}
		after = ts[len(ts)-1].ID
	}
}
