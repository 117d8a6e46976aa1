package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

// The week partitions of message history (docs/operations.md#partitions). The workers' maintenance
// loop does the same as "create" and "drop-expired" every ten minutes; these are for operators.

type partitionView struct {
	Table string    `json:"table"`
	Name  string    `json:"name"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Bytes int64     `json:"bytes"`
	Rows  int64     `json:"rows"` // the planner's estimate
}

type droppedView struct {
	Week string `json:"week"` // its Monday
	// The planner's estimates of the week's messages and events, and of its callbacks, provider
	// references and webhook deliveries with their attempts (dropped once every message they
	// could refer to is gone).
	Messages           int64 `json:"messages"`
	Events             int64 `json:"events"`
	Callbacks          int64 `json:"callbacks"`
	ProviderReferences int64 `json:"provider_references"`
	WebhookDeliveries  int64 `json:"webhook_deliveries"`
	WebhookAttempts    int64 `json:"webhook_attempts"`
	TookMS             int64 `json:"took_ms"`
}

func partitionsList(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("partitions list", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	parts, err := e.st.ListPartitions(ctx)
	if err != nil {
		return err
	}
	views := make([]partitionView, len(parts))
	t := &table{header: "TABLE\tPARTITION\tFROM\tTO\tROWS\tBYTES"}
	for i, p := range parts {
		views[i] = partitionView{Table: p.Table, Name: p.Name, From: p.From, To: p.To, Bytes: p.Bytes, Rows: p.Rows}
		t.add(p.Table, p.Name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly), p.Rows, p.Bytes)
	}
	return emit(e.out, *format, views, t)
}

func partitionsCreate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("partitions create", flag.ContinueOnError)
	ahead := fs.Int("ahead", 14, "days ahead of today")
	from := fs.String("from", "", "first day (YYYY-MM-DD; default today), to make weeks in the past, before a restore")
	if err := fs.Parse(args); err != nil || *ahead < 0 {
		return errUsage
	}
	start := time.Now()
	if *from != "" {
		var err error
		if start, err = time.Parse(time.DateOnly, *from); err != nil {
			return fmt.Errorf("%w: -from: %v", errUsage, err)
		}
	}
	n, err := e.st.CreatePartitions(ctx, start, time.Now().AddDate(0, 0, *ahead))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "created %d partitions\n", n)
	return nil
}

func partitionsDropExpired(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("partitions drop-expired", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	horizon, err := e.st.HistoryHorizon(ctx)
	if err != nil {
		return err
	}
	dropped, err := e.st.DropExpiredPartitions(ctx, horizon)
	views := make([]droppedView, len(dropped))
	t := &table{header: "WEEK\tMESSAGES\tEVENTS\tCALLBACKS\tREFERENCES\tWEBHOOK DELIVERIES\tATTEMPTS\tTOOK"}
	for i, d := range dropped {
		views[i] = droppedView{Week: d.From.Format(time.DateOnly), Messages: d.Messages, Events: d.Events,
			Callbacks: d.Callbacks, ProviderReferences: d.ProviderReferences, WebhookDeliveries: d.WebhookDeliveries,
			WebhookAttempts: d.WebhookAttempts, TookMS: d.Took.Milliseconds()}
		t.add(views[i].Week, d.Messages, d.Events, d.Callbacks, d.ProviderReferences, d.WebhookDeliveries, d.WebhookAttempts,
			d.Took.Round(time.Millisecond))
	}
	if err := emit(e.out, *format, views, t); err != nil {
		return err
	}
	return err
}
