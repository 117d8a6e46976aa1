package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/queue"
)

// Setting up and keeping the schema: setup, migrate, migrate status, topics, outbox requeue.

func setup(ctx context.Context, e *env, args []string) error {
	pool, st, out := e.pool, e.st, e.out
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	sandboxDefaults := fs.Bool("sandbox-defaults", false, "also ensure sandbox system defaults for sms and email")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	applied, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "applied %d migrations %v\n", len(applied), applied)
	if err := topics(ctx, e); err != nil {
		return err
	}
	if *sandboxDefaults {
		if _, err := app.EnsureSandboxDefaults(ctx, st, 0); err != nil {
			return err
		}
		fmt.Fprintln(out, "sandbox system defaults ready")
	}
	return nil
}

func outboxRequeue(ctx context.Context, e *env, args []string) error {
	st, out := e.st, e.out
	n, err := st.ForgetPublished(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d unfinished messages will be published again by the sweeper\n", n)
	return nil
}

func migrateStatus(ctx context.Context, e *env, args []string) error {
	pool, out := e.pool, e.out
	fs := flag.NewFlagSet("migrate status", flag.ContinueOnError)
	format := outputFlag(fs)
	if err := fs.Parse(args); err != nil || checkFormat(*format) != nil {
		return errUsage
	}
	states, err := db.Status(ctx, pool)
	if err != nil {
		return err
	}
	t := &table{header: "VERSION\tNAME\tAPPLIED AT\tCHECKSUM"}
	for _, m := range states {
		at := any("not applied")
		if m.AppliedAt != nil {
			at = *m.AppliedAt
		}
		t.add(m.Version, m.Name, at, m.Checksum)
	}
	return emit(out, *format, states, t)
}

func migrateUp(ctx context.Context, e *env, args []string) error {
	pool, out := e.pool, e.out
	applied, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "applied %d migrations %v\n", len(applied), applied)
	return nil
}

// topics creates the Kafka topics (idempotent).
func topics(ctx context.Context, e *env) error {
	cfg := e.cfg
	err := queue.EnsureTopics(ctx, cfg.KafkaBrokers, cfg.KafkaPartitions, cfg.KafkaReplicas, queue.AllTopics()...)
	if err != nil {
		return fmt.Errorf("create topics: %w (check COMMS_KAFKA_BROKERS, and COMMS_KAFKA_SASL_* and COMMS_KAFKA_TLS for a secured cluster)", err)
	}
	fmt.Fprintln(e.out, "topics ready:", strings.Join(queue.AllTopics(), " "))
	return nil
}
