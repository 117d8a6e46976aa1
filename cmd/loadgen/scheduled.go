package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// scheduledRun (-scheduled N) schedules N messages for one second, sent in batches of 1,000
// spread over the tenants, then reports from the database how late each reached its provider
// after that second (sent_at - scheduled_at) and how fast they drained.
func scheduledRun(ctx context.Context, o options) error {
	if o.dbURL == "" {
		return fmt.Errorf("-scheduled needs -database-url")
	}
	c := &http.Client{Timeout: 60 * time.Second}
	tenantIDs, keys, err := createTenants(ctx, c, o)
	if err != nil {
		return err
	}
	// Far enough ahead for every batch to be accepted first.
	due := time.Now().Add(time.Duration(o.scheduled/2000+5) * time.Second).Truncate(time.Second).UTC()
	for n := 0; n < o.scheduled; n += 1000 {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"send_at":%q,"messages":[`, due.Format(time.RFC3339Nano))
		for i := n; i < min(n+1000, o.scheduled); i++ {
			if i > n {
				b.WriteByte(',')
			}
			b.Write(messageBody(o, int64(i)))
		}
		b.WriteString("]}")
		req, err := http.NewRequestWithContext(ctx, "POST", o.url+"/v1/messages/batch", &b)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+keys[(n/1000)%len(keys)])
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		var res struct{ Accepted int }
		err = json.NewDecoder(resp.Body).Decode(&res)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("batch at %d: status %d: %w", n, resp.StatusCode, err)
		}
		if want := min(1000, o.scheduled-n); res.Accepted != want {
			return fmt.Errorf("batch at %d: status %d, %d of %d accepted", n, resp.StatusCode, res.Accepted, want)
		}
	}
	if time.Now().After(due) {
		return fmt.Errorf("scheduling %d messages outlasted their due time; schedule fewer", o.scheduled)
	}
	conn, err := pgx.Connect(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := due.Add(o.drain)
	for {
		var open int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM communication.message_logs WHERE tenant_id = ANY($1) AND status IN ('scheduled', 'queued', 'sending')`, tenantIDs).Scan(&open); err != nil {
			return err
		}
		if open == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rows, err := conn.Query(ctx, `SELECT sent_at FROM communication.message_logs WHERE tenant_id = ANY($1) AND sent_at IS NOT NULL`, tenantIDs)
	if err != nil {
		return err
	}
	var lates []time.Duration
	var sent time.Time
	var early int
	if _, err := pgx.ForEachRow(rows, []any{&sent}, func() error {
		if sent.Before(due) {
			early++
		}
		lates = append(lates, sent.Sub(due))
		return nil
	}); err != nil {
		return err
	}
	if len(lates) == 0 {
		return fmt.Errorf("none of %d scheduled messages was sent", o.scheduled)
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	p := pct(append([]time.Duration(nil), lates...))
	last := lates[len(lates)-1].Seconds()
	fmt.Printf("run %q: %d messages scheduled for %s over %d tenants\n", o.label, o.scheduled, due.Format(time.TimeOnly), o.tenants)
	fmt.Printf("  sent %d of %d, %d before their time; drained at %.0f/s (all sent %.2f s after their time)\n", len(lates), o.scheduled, early, float64(len(lates))/last, last)
	fmt.Printf("  send_at -> sent ms: p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", p.P50, p.P95, p.P99, p.Max)
	return nil
}
