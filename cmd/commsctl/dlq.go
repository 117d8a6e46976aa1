package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/dlq"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/queue"
)

// Dead letters: list, show, replay, and the replay log.

// quiet logs only warnings, on stderr: stdout is the command's output.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func dlqFiltered(cmd string) func(ctx context.Context, e *env, args []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		cfg, st, out := e.cfg, e.st, e.out
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		var f domain.DeadLetterFilter
		var from, to string
		var msgIDs multiFlag
		fs.StringVar(&f.TenantID, "tenant", "", "tenant id")
		fs.StringVar(&f.ProviderType, "provider", "", "provider type")
		fs.StringVar(&f.ProviderConfigID, "provider-id", "", "provider config id")
		fs.StringVar(&f.ErrorCode, "error-code", "", "normalized error code")
		fs.StringVar(&from, "from", "", "failed at or after (RFC 3339)")
		fs.StringVar(&to, "to", "", "failed before (RFC 3339)")
		fs.Var(&msgIDs, "message-id", "message id (repeatable)")
		includeReplayed := fs.Bool("include-replayed", false, "list: also entries already replayed")
		limit := fs.Int("limit", 100, "list: at most this many")
		dryRun := fs.Bool("dry-run", false, "replay: count and audit, change nothing")
		all := fs.Bool("all", false, "replay: with no filter, replay everything")
		format := outputFlag(fs)
		if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
			return errUsage
		}
		f.MessageIDs = msgIDs
		for _, p := range []struct {
			v   string
			dst **time.Time
		}{{from, &f.From}, {to, &f.To}} {
			if p.v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339, p.v)
			if err != nil {
				return fmt.Errorf("%w: -from and -to take RFC 3339 times", errUsage)
			}
			*p.dst = &t
		}
		if cmd == "dlq list" {
			f.IncludeReplayed = *includeReplayed
			ds, err := dlq.New(st, nil, quiet()).List(ctx, f, 0, *limit)
			if err != nil {
				return err
			}
			t := &table{header: "ID\tFAILED AT\tTENANT\tMESSAGE\tPROVIDER\tCODE\tATTEMPTS\tREPLAYED"}
			for _, d := range ds {
				replayed := ""
				if d.ReplayedAt != nil {
					replayed = d.ReplayID
				}
				t.add(d.ID, d.FailedAt, d.TenantID, d.MessageID, d.ProviderType, d.ErrorCode, d.Attempts, replayed)
			}
			return emit(out, *format, api.Views(ds, api.DeadLetterView), t)
		}
		if f.Empty() && !*all {
			return fmt.Errorf("%w: give a filter, or -all to replay everything", errUsage)
		}
		prod := queue.NewProducer(cfg.KafkaBrokers, queue.TopicSend)
		defer prod.Close()
		actor := "commsctl"
		if u := os.Getenv("USER"); u != "" {
			actor += " (" + u + ")"
		}
		rep, err := dlq.New(st, prod, quiet()).WithProgress(progress(stderr, "published", "replayed messages")).Replay(ctx, f, actor, *dryRun)
		if err != nil {
			return err
		}
		return emit(out, *format, api.ReplayView(rep), replaysTable([]domain.Replay{rep}))
	}
}

func dlqShow(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("dlq show", flag.ContinueOnError)
	format := outputFlag(fs)
	if len(args) < 1 || fs.Parse(args[1:]) != nil || checkFormat(*format) != nil {
		return errUsage
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return errUsage
	}
	d, err := dlq.New(st, nil, quiet()).Get(ctx, id)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", id, err)
	}
	t := &table{header: "FIELD\tVALUE"}
	t.add("id", d.ID)
	t.add("failed at", d.FailedAt)
	t.add("tenant", d.TenantID)
	t.add("message", d.MessageID)
	t.add("provider", d.ProviderType+" "+d.ProviderConfigID)
	t.add("error", d.ErrorCode+": "+d.ErrorMessage)
	t.add("attempts", d.Attempts)
	if d.ReplayedAt != nil {
		t.add("replayed", d.ReplayID+" at "+d.ReplayedAt.UTC().Format(time.RFC3339))
	}
	return emit(out, *format, api.DeadLetterView(d), t)
}

func dlqReplays(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	fs := flag.NewFlagSet("dlq replays", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	reps, err := dlq.New(st, nil, quiet()).Replays(ctx, 100)
	if err != nil {
		return err
	}
	return emit(out, *format, api.Views(reps, api.ReplayLogView), replaysTable(reps))
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func replaysTable(reps []domain.Replay) *table {
	t := &table{header: "REPLAY\tAT\tACTOR\tDRY RUN\tMATCHED\tREPLAYED"}
	for _, r := range reps {
		t.add(r.ID, r.At, r.Actor, r.DryRun, r.Matched, r.Replayed)
	}
	return t
}
