package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/logicspike/comms/pkg/client"
)

// readsMain measures what a tenant reads, against a stack on a seeded database (loadgen seed):
//
//	loadgen reads -admin-key ck_admin_… -tenant ten_… -duration 20s
//
// It round-robins, from -concurrency clients, over the reads a tenant's dashboard and services
// make: a message by id (its status and timeline), the first page of the message list, a page
// 60 days deep and the one after it, and the 90-day overview; and reports each one's latency
// percentiles over loopback HTTP.
func readsMain(args []string) int {
	fs := flag.NewFlagSet("loadgen reads", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "API base URL")
	admin := fs.String("admin-key", os.Getenv("COMMS_ADMIN_KEY"), "admin key, to make a key for the tenant")
	tenant := fs.String("tenant", "", "the tenant whose history to read (required)")
	duration := fs.Duration("duration", 20*time.Second, "how long to read")
	concurrency := fs.Int("concurrency", 8, "reads in flight")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil || *tenant == "" || *admin == "" {
		fmt.Fprintln(os.Stderr, "loadgen reads: -tenant and -admin-key are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	key, err := client.NewAdmin(*base, *admin).CreateAPIKey(ctx, client.CreateAPIKeyJSONRequestBody{Kind: "tenant", TenantID: *tenant, Name: "loadgen reads"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen reads: key:", err)
		return 1
	}
	c := client.New(*base, key.Secret)
	// Ids to read by: every message of the first pages, and of a page every ten days back.
	var ids []string
	now := time.Now().UTC()
	for days := 0; days < 90; days += 10 {
		p, err := c.ListMessages(ctx, client.ListMessagesParams{Limit: 200, CreatedBefore: now.AddDate(0, 0, -days)})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen reads: list:", err)
			return 1
		}
		for _, m := range p.Data {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen reads: the tenant has no messages")
		return 1
	}
	deep := client.ListMessagesParams{Limit: 50, CreatedBefore: now.AddDate(0, 0, -60)}
	deepPage, err := c.ListMessages(ctx, deep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen reads: deep page:", err)
		return 1
	}
	overview := "/v1/analytics/timeseries?" + url.Values{"from": {now.AddDate(0, 0, -90).Format(time.RFC3339)},
		"to": {now.Format(time.RFC3339)}, "interval": {"day"}}.Encode()
	reads := []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"message by id (status and timeline)", func(ctx context.Context) error {
			_, err := c.GetMessage(ctx, ids[rand.IntN(len(ids))]) //nolint:gosec // picking an id, not a secret
			return err
		}},
		{"message list, first page", func(ctx context.Context) error {
			_, err := c.ListMessages(ctx, client.ListMessagesParams{Limit: 50})
			return err
		}},
		{"message list, 60 days deep", func(ctx context.Context) error { _, err := c.ListMessages(ctx, deep); return err }},
		{"message list, the page after it", func(ctx context.Context) error {
			_, err := c.ListMessages(ctx, client.ListMessagesParams{Limit: 50, Cursor: deepPage.NextCursor})
			return err
		}},
		{"90-day overview", func(ctx context.Context) error { return c.Do(ctx, http.MethodGet, overview, nil, nil) }},
	}
	lat := make([][]time.Duration, len(reads))
	var mu sync.Mutex
	var failures int
	end := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for w := range *concurrency {
		wg.Go(func() {
			for i := w; time.Now().Before(end) && ctx.Err() == nil; i++ {
				r := i % len(reads)
				start := time.Now()
				err := reads[r].do(ctx)
				d := time.Since(start)
				mu.Lock()
				if err != nil {
					failures++
				} else {
					lat[r] = append(lat[r], d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	out := map[string]percentiles{}
	for i, r := range reads {
		out[r.name] = pct(lat[i])
	}
	if *jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"tenant": *tenant, "reads": out, "failures": failures})
		return 0
	}
	fmt.Printf("reads of %s over %s, %d clients, %d failed\n", *tenant, *duration, *concurrency, failures)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "read\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms")
	for i, r := range reads {
		p := out[r.name]
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", r.name, len(lat[i]), p.P50, p.P95, p.P99, p.Max)
	}
	_ = tw.Flush()
	if failures > 0 {
		return 1
	}
	return 0
}
