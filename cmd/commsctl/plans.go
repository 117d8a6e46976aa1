package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/logicspike/comms/internal/accounts"
	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
)

// Plans: the retention defaults a tenant takes when it is created on, or moved to, a plan.

func planSet(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("plan set", flag.ContinueOnError)
	content := fs.Duration("content-retention", 0, "keep message subjects and bodies this long (e.g. 720h; 0: until the message is final)")
	history := fs.Duration("history-retention", 0, "keep messages and everything about them this long (e.g. 2160h)")
	audit := fs.Duration("audit-retention", 0, "keep audit entries this long (e.g. 9600h)")
	if len(args) < 1 || fs.Parse(args[1:]) != nil || fs.NArg() > 0 {
		return errUsage
	}
	// The plan is replaced whole: a retention not given is the global default for new tenants,
	// and leaves a moved tenant's own.
	p := domain.Plan{Name: args[0]}
	seconds := func(d time.Duration) *int64 { s := int64(d.Seconds()); return &s }
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "content-retention":
			p.ContentRetentionSeconds = seconds(*content)
		case "history-retention":
			p.HistoryRetentionSeconds = seconds(*history)
		case "audit-retention":
			p.AuditRetentionSeconds = seconds(*audit)
		}
	})
	out, err := accounts.New(e.st, nil).PutPlan(ctx, p)
	if err != nil {
		return fmt.Errorf("set plan %s: %w", args[0], describe(err))
	}
	return printJSON(e.out, api.PlanView(out))
}

func planList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("plan list", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	plans, err := accounts.New(e.st, nil).Plans(ctx)
	if err != nil {
		return err
	}
	t := &table{header: "NAME\tCONTENT\tHISTORY\tAUDIT\tUPDATED"}
	for _, p := range plans {
		t.add(p.Name, retention(p.ContentRetentionSeconds), retention(p.HistoryRetentionSeconds), retention(p.AuditRetentionSeconds), p.UpdatedAt)
	}
	return emit(e.out, *format, api.Views(plans, api.PlanView), t)
}

// retention shows a plan's retention, or "default" where the plan leaves it to the global one.
func retention(s *int64) string {
	if s == nil {
		return "default"
	}
	return (time.Duration(*s) * time.Second).String()
}
