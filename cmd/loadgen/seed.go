package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/testing/seed"
)

// seedMain loads a history into a migrated database for measuring comms at size:
//
//	loadgen seed -database-url postgres://… -messages 100000000 -days 90 -tenants 1000 -hot-share 0.2
//
// and reports how long it took and the footprint of every history table: bytes per message.
func seedMain(args []string) int {
	fs := flag.NewFlagSet("loadgen seed", flag.ContinueOnError)
	dbURL := fs.String("database-url", os.Getenv("COMMS_DATABASE_URL"), "the migrated database to load (its role must be allowed to set session_replication_role)")
	var p seed.Plan
	fs.IntVar(&p.Messages, "messages", 1_000_000, "messages to load")
	fs.IntVar(&p.Days, "days", 90, "spread evenly over this many days up to now")
	fs.IntVar(&p.Tenants, "tenants", 1000, "tenants, created for the seed")
	fs.Float64Var(&p.HotShare, "hot-share", 0.2, "the share of the messages of the first (hot) tenant")
	fs.Uint64Var(&p.Seed, "seed", 1, "random seed: the same flags make the same history")
	persons := fs.String("persons", "", "E.164 numbers, comma-separated, each the recipient of -person-messages of the hot tenant's messages (people to erase)")
	fs.IntVar(&p.PersonMessages, "person-messages", 10_000, "with -persons: how many messages each received")
	fs.DurationVar(&p.ContentRetention, "content-retention", 30*24*time.Hour,
		"bodies of messages older than this are blank, as the content purger leaves them at the default content retention (0 keeps every body)")
	fs.BoolVar(&p.HotWebhook, "hot-webhook", false, "give the hot tenant a (disabled) webhook endpoint for every event type, with a delivery and its attempt for each event published, as the deliverer leaves them")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *persons != "" {
		p.Persons = strings.Split(*persons, ",")
	}
	if *dbURL == "" {
		fmt.Fprintln(os.Stderr, "loadgen seed: -database-url (or COMMS_DATABASE_URL) is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := db.Open(ctx, *dbURL, 4)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen seed:", err)
		return 1
	}
	defer pool.Close()
	start := time.Now()
	rep, err := seed.History(ctx, pool, p, func(done, total int) {
		fmt.Fprintf(os.Stderr, "\r%d of %d messages (%.0f/s)", done, total, float64(done)/time.Since(start).Seconds())
	})
	fmt.Fprintln(os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen seed:", err)
		return 1
	}
	sizes, err := seed.Footprint(ctx, pool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen seed:", err)
		return 1
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"plan": p, "report": rep, "tables": sizes})
		return 0
	}
	fmt.Printf("loaded %d messages, %d events, %d callbacks, %d webhook deliveries for %d tenants (the hot one: %s) in %s (%.0f messages/s)\n",
		rep.Messages, rep.Events, rep.Callbacks, rep.WebhookDeliveries, len(rep.Tenants), rep.Tenants[0], rep.Took.Round(time.Second),
		float64(rep.Messages)/rep.Took.Seconds())
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "table\trows\tMB\tbytes per message\t")
	var total int64
	for _, s := range sizes {
		total += s.Bytes
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t\n", s.Table, s.Rows, float64(s.Bytes)/1e6, float64(s.Bytes)/float64(rep.Messages))
	}
	fmt.Fprintf(w, "all\t\t%.1f\t%.0f\t\n", float64(total)/1e6, float64(total)/float64(rep.Messages))
	_ = w.Flush()
	return 0
}
