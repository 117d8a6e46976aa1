package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/retention"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/ids"
)

// eraseMain times the erasure of one person from a seeded history (loadgen seed -person), with
// the eraser the workers run, batch by batch:
//
//	loadgen erase -database-url postgres://… -tenant ten_… -recipient +14155550123
func eraseMain(args []string) int {
	fs := flag.NewFlagSet("loadgen erase", flag.ContinueOnError)
	dbURL := fs.String("database-url", os.Getenv("COMMS_DATABASE_URL"), "the database to erase from")
	tenant := fs.String("tenant", "", "the tenant (loadgen seed prints the hot one)")
	recipient := fs.String("recipient", "", "the address to erase")
	batch := fs.Int("batch", 1000, "messages per transaction, as the eraser's default")
	busy := fs.Float64("busy", 0.5, "the share of time in transactions, as the eraser's default (1: no rest)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dbURL == "" || *tenant == "" || *recipient == "" {
		fmt.Fprintln(os.Stderr, "loadgen erase: -database-url, -tenant and -recipient are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pool, err := db.Open(ctx, *dbURL, 2)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen erase:", err)
		return 1
	}
	defer pool.Close()
	st := store.New(pool)
	ch := recipients.AddressChannel(*recipient)
	start := time.Now()
	e, _, err := st.CreateErasure(ctx, ids.New(ids.Erasure), *tenant, ch, *recipient)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen erase:", err)
		return 1
	}
	counter := &countingStore{EraserStore: st}
	er := retention.NewEraser(retention.EraserConfig{Batch: *batch, Busy: *busy}, counter, slog.New(slog.DiscardHandler))
	if _, err := er.Pass(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen erase:", err)
		return 1
	}
	took := time.Since(start)
	got, err := st.GetErasure(ctx, *tenant, e.ID)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen erase:", err)
		return 1
	}
	if *jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"erasure": got.ID, "status": got.Status, "counts": got.Counts,
			"took_ms": took.Milliseconds(), "transactions": counter.calls, "slowest_ms": counter.slowest.Milliseconds()})
		return 0
	}
	fmt.Printf("erasure %s %s in %s: %d transactions (the slowest %s); %d messages, %d events, %d callbacks, %d dead letters, %d webhook deliveries, %d suppressions\n",
		got.ID, got.Status, took.Round(time.Millisecond), counter.calls, counter.slowest.Round(time.Millisecond),
		got.Counts.Messages, got.Counts.Events, got.Counts.Callbacks, got.Counts.DeadLetters, got.Counts.WebhookDeliveries, got.Counts.Suppressions)
	return 0
}

// countingStore times each of the eraser's transactions.
type countingStore struct {
	retention.EraserStore
	calls   int
	slowest time.Duration
}

func (c *countingStore) EraseNext(ctx context.Context, limit int) (e domain.Erasure, found bool, err error) {
	start := time.Now()
	e, found, err = c.EraserStore.EraseNext(ctx, limit)
	if found {
		c.calls++
		c.slowest = max(c.slowest, time.Since(start))
	}
	return e, found, err
}
