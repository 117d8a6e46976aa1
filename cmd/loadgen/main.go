// Command loadgen drives POST /v1/messages at a given rate (or as fast as a concurrency allows)
// for N tenants, and reports accepted/s, latency percentiles and errors. With -database-url it
// then waits for the run's messages to reach a final state and reports the end-to-end figures:
// delivered/s and accepted → sent latency percentiles, from the messages' own timestamps.
//
// Latency is measured from when a request was due, not when it was sent, so a server that
// stalls cannot hide the wait it causes (no coordinated omission).
//
//	loadgen -admin-key ck_admin_... -tenants 100 -rate 2000 -duration 60s
//
// `loadgen seed` loads a history of sent messages into a database (seed.go); `loadgen reads`
// measures a tenant's reads of it (reads.go); `loadgen erase` times the erasure of a person in it
// (erase.go).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

type options struct {
	url, adminKey, dbURL, channel, label string
	category                             string // "": the built-in transactional
	tenants, rate, concurrency, batch    int
	scheduled                            int
	duration, drain, every, warmup       time.Duration
	idempotency, jsonOut                 bool
	noisyMode                            string // "", hang or 503: add a misbehaving tenant B
	noisyRate                            int
	noisyHang                            time.Duration
	noisyLimit                           float64
	poison                               bool // this sender's bodies are poison (set for B in -noisy poison)
	webhooks                             bool
	webhookURL                           string // set by run when webhooks is: its sink's
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		os.Exit(seedMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "erase" {
		os.Exit(eraseMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "inbox" {
		os.Exit(inboxMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "push" {
		os.Exit(pushMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "reads" {
		os.Exit(readsMain(os.Args[2:]))
	}
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "API base URL")
	flag.StringVar(&o.adminKey, "admin-key", os.Getenv("COMMS_ADMIN_KEY"), "admin key, to create the tenants and their keys")
	flag.StringVar(&o.dbURL, "database-url", "", "if set, report end-to-end figures from this database after the run")
	flag.StringVar(&o.channel, "channel", "sms", "sms or email")
	flag.StringVar(&o.category, "category", "", "declare this category (default in) for every tenant and name it in every message, so that each send checks its recipient's preferences")
	flag.StringVar(&o.label, "label", "", "name of this run in the report")
	flag.IntVar(&o.tenants, "tenants", 100, "tenants to spread the load over")
	flag.IntVar(&o.rate, "rate", 0, "requests per second (0: as fast as -concurrency allows)")
	flag.IntVar(&o.concurrency, "concurrency", 128, "requests in flight at most")
	flag.IntVar(&o.scheduled, "scheduled", 0, "instead of a paced run: schedule this many messages for one second (in batches of 1,000) and report, from -database-url, how late after it they were sent")
	flag.IntVar(&o.batch, "batch", 0, "send batches of this many recipients to POST /v1/messages/batch (0: one message per request); rates and figures then count recipients")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to send (and measure)")
	flag.DurationVar(&o.warmup, "warmup", 0, "send this long first without measuring: the stack's first seconds (consumer groups joining, pools filling) are not its steady state")
	flag.DurationVar(&o.drain, "drain", 2*time.Minute, "with -database-url: how long to wait for messages to finish")
	flag.BoolVar(&o.idempotency, "idempotency", true, "send a unique Idempotency-Key with each request")
	flag.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	flag.DurationVar(&o.every, "progress", 0, "if set, print accepted/s to stderr this often")
	flag.StringVar(&o.noisyMode, "noisy", "", "isolation benchmark: add a tenant B whose provider hangs (hang), answers 503 (503) or behaves (ok, the control), or who sends bodies the database cannot store (poison); the report covers the other tenants")
	flag.IntVar(&o.noisyRate, "noisy-rate", 500, "with -noisy: B's requests per second")
	flag.DurationVar(&o.noisyHang, "noisy-hang", 10*time.Second, "with -noisy hang: how long B's provider holds each send")
	flag.Float64Var(&o.noisyLimit, "noisy-limit", 0, "with -noisy: B's intake rate limit per second (its plan); 0 keeps the tenant default")
	flag.BoolVar(&o.webhooks, "webhooks", false, "give each tenant a webhook endpoint for every event type, on a sink loadgen runs on loopback (it answers 204), so that the run writes webhook deliveries too; the report adds how many the sink received")
	flag.Parse()
	if o.noisyMode != "" && o.noisyMode != "hang" && o.noisyMode != "503" && o.noisyMode != "ok" && o.noisyMode != "poison" {
		fmt.Fprintln(os.Stderr, "loadgen: -noisy must be hang, 503, ok or poison")
		os.Exit(2)
	}
	if o.adminKey == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -admin-key (or COMMS_ADMIN_KEY) is required")
		os.Exit(2)
	}
	if o.channel != "sms" && o.channel != "email" {
		fmt.Fprintln(os.Stderr, "loadgen: -channel must be sms or email")
		os.Exit(2)
	}
	if o.webhooks && o.scheduled > 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -webhooks does not apply to -scheduled runs")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.scheduled > 0 {
		if err := scheduledRun(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	if o.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	rep.print(os.Stdout)
}

type report struct {
	Label       string         `json:"label,omitempty"`
	Tenants     int            `json:"tenants"`
	TargetRate  int            `json:"target_rate"`
	Concurrency int            `json:"concurrency"`
	Duration    float64        `json:"duration_s"`
	Warmup      float64        `json:"warmup_s,omitempty"` // sent before the measured window, not counted
	Requests    int64          `json:"requests"`
	Accepted    int64          `json:"accepted"`
	Errors      map[string]int `json:"errors"`
	AcceptedPS  float64        `json:"accepted_per_s"`
	Latency     percentiles    `json:"latency_ms"`
	Late        int64          `json:"late_starts"` // requests that started >10 ms after they were due
	E2E         *e2eReport     `json:"end_to_end,omitempty"`
	Noisy       *noisyReport   `json:"noisy_neighbour,omitempty"`
	// WebhooksReceived counts the deliveries -webhooks' sink received, those of warm-up messages too.
	WebhooksReceived int64 `json:"webhooks_received,omitempty"`
}

type noisyReport struct {
	Mode          string `json:"mode"`
	Rate          int    `json:"rate"`
	Accepted      int64  `json:"accepted"`
	Refused       int64  `json:"refused"`
	ProviderCalls int64  `json:"provider_calls"`
}

type e2eReport struct {
	Final        int            `json:"final"`
	ByStatus     map[string]int `json:"by_status"`
	DeliveredPS  float64        `json:"delivered_per_s"`
	SteadyPS     float64        `json:"steady_delivered_per_s"`
	AcceptToSent percentiles    `json:"accepted_to_sent_ms"`
}

type percentiles struct {
	P50, P95, P99, Max float64
}

func pct(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) float64 {
		i := int(q * float64(len(ds)-1))
		return float64(ds[i].Microseconds()) / 1000
	}
	return percentiles{P50: at(.50), P95: at(.95), P99: at(.99), Max: at(1)}
}

func (r report) print(w io.Writer) {
	warm := ""
	if r.Warmup > 0 {
		warm = fmt.Sprintf(" measured after a %.0fs warm-up", r.Warmup)
	}
	fmt.Fprintf(w, "run %q: %d tenants, target %s, concurrency %d, %.0fs%s\n", r.Label, r.Tenants, rateName(r.TargetRate), r.Concurrency, r.Duration, warm)
	fmt.Fprintf(w, "  intake: %d requests, %d accepted (%.0f/s), errors %v, late starts %d\n", r.Requests, r.Accepted, r.AcceptedPS, r.Errors, r.Late)
	fmt.Fprintf(w, "  intake latency ms: p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max)
	if e := r.E2E; e != nil {
		fmt.Fprintf(w, "  end to end: %d final %v, delivered %.0f/s overall, %.0f/s steady\n", e.Final, e.ByStatus, e.DeliveredPS, e.SteadyPS)
		fmt.Fprintf(w, "  accepted -> sent ms: p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", e.AcceptToSent.P50, e.AcceptToSent.P95, e.AcceptToSent.P99, e.AcceptToSent.Max)
	}
	if r.WebhooksReceived > 0 {
		fmt.Fprintf(w, "  webhook deliveries received: %d\n", r.WebhooksReceived)
	}
	if n := r.Noisy; n != nil {
		fmt.Fprintf(w, "  noisy neighbour (%s, %d/s, not in the figures above): %d accepted, %d refused, its provider called %d times\n",
			n.Mode, n.Rate, n.Accepted, n.Refused, n.ProviderCalls)
	}
}

func rateName(r int) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%d/s", r)
}

func run(ctx context.Context, o options) (report, error) {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.concurrency * 2, MaxIdleConnsPerHost: o.concurrency * 2, IdleConnTimeout: time.Minute,
	}}
	var sink *webhookSink
	if o.webhooks {
		var err error
		if sink, err = startWebhookSink(); err != nil {
			return report{}, err
		}
		defer sink.close()
		o.webhookURL = sink.url()
	}
	tenantIDs, keys, err := createTenants(ctx, client, o)
	if err != nil {
		return report{}, err
	}
	var nz *noisy
	var noisyDone chan struct{}
	if o.noisyMode != "" {
		nz = &noisy{mode: o.noisyMode, hang: o.noisyHang, rate: o.noisyRate}
		key, err := nz.start(ctx, client, o)
		if err != nil {
			return report{}, err
		}
		defer nz.stop()
		noisyCtx, stopNoisy := context.WithTimeout(ctx, o.warmup+o.duration)
		defer stopNoisy()
		noisyDone = make(chan struct{})
		go func() { defer close(noisyDone); nz.run(noisyCtx, client, o, key) }()
	}
	runID := fmt.Sprintf("%d", time.Now().UnixNano())

	// The pacer hands out due times; workers send when one is due.
	due := make(chan time.Time, o.concurrency)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	runCtx, cancel := context.WithTimeout(ctx, o.warmup+o.duration)
	defer cancel()
	go func() {
		defer close(due)
		if o.rate == 0 {
			for runCtx.Err() == nil {
				select {
				case due <- time.Now():
				case <-runCtx.Done():
				}
			}
			return
		}
		interval := time.Second / time.Duration(o.rate)
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-runCtx.Done():
					return
				}
			}
			if runCtx.Err() != nil {
				return
			}
			due <- at // blocks when every worker is busy: the wait counts in the latency
		}
	}()

	var (
		requests, accepted, late atomic.Int64
		mu                       sync.Mutex
		lats                     []time.Duration
		errs                     = map[string]int{}
		wg                       sync.WaitGroup
		seq                      atomic.Int64
	)
	if o.every > 0 {
		go func() {
			t := time.NewTicker(o.every)
			defer t.Stop()
			last := int64(0)
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					n := accepted.Load()
					fmt.Fprintf(os.Stderr, "%6.0fs %8.0f accepted/s\n", time.Since(start).Seconds(), float64(n-last)/o.every.Seconds())
					last = n
				}
			}
		}()
	}
	for w := 0; w < o.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for at := range due {
				n := seq.Add(1)
				if at.Before(measureFrom) {
					_, _, _ = send(ctx, client, o, keys[n%int64(len(keys))], fmt.Sprintf("lg-%s-%d", runID, n), n)
					continue
				}
				if time.Since(at) > 10*time.Millisecond {
					late.Add(1)
				}
				status, got, err := send(ctx, client, o, keys[n%int64(len(keys))], fmt.Sprintf("lg-%s-%d", runID, n), n)
				requests.Add(1)
				if err == nil && got > 0 {
					accepted.Add(int64(got))
					local = append(local, time.Since(at))
					if o.batch == 0 || got == o.batch {
						continue
					}
					status = http.StatusMultiStatus // some items of the batch refused
				}
				mu.Lock()
				if err != nil {
					errs[errClass(err)]++
				} else {
					errs[fmt.Sprint(status)]++
				}
				mu.Unlock()
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(measureFrom)
	rep := report{
		Label: o.label, Tenants: o.tenants, TargetRate: o.rate, Concurrency: o.concurrency, Duration: elapsed.Seconds(), Warmup: o.warmup.Seconds(),
		Requests: requests.Load(), Accepted: accepted.Load(), Errors: errs, Late: late.Load(),
		AcceptedPS: float64(accepted.Load()) / elapsed.Seconds(), Latency: pct(lats),
	}
	if nz != nil {
		<-noisyDone
		rep.Noisy = &noisyReport{Mode: nz.mode, Rate: nz.rate, Accepted: nz.accepted.Load(), Refused: nz.refused.Load(), ProviderCalls: nz.calls.Load()}
	}
	if o.dbURL != "" {
		e, err := endToEnd(ctx, o, tenantIDs, start, measureFrom)
		if err != nil {
			return rep, err
		}
		rep.E2E = e
	}
	if sink != nil {
		rep.WebhooksReceived = sink.settle(ctx, 3*time.Second, o.drain)
	}
	return rep, nil
}

func errClass(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// send sends request n (a message, or with -batch a batch) and returns the status and how many
// recipients were accepted.
func send(ctx context.Context, c *http.Client, o options, key, idem string, n int64) (int, int, error) {
	path, body := "/v1/messages", messageBody(o, n)
	if o.batch > 0 {
		path = "/v1/messages/batch"
		body = append(body[:0:0], `{"messages":[`...)
		for i := range int64(o.batch) {
			if i > 0 {
				body = append(body, ',')
			}
			body = append(body, messageBody(o, n*int64(o.batch)+i)...)
		}
		body = append(body, "]}"...)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", o.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if o.idempotency {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	switch {
	case o.batch > 0 && resp.StatusCode == http.StatusOK:
		var res struct{ Accepted int }
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return resp.StatusCode, 0, fmt.Errorf("decode batch answer: %w", err)
		}
		return resp.StatusCode, res.Accepted, nil
	case resp.StatusCode == http.StatusAccepted:
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, 1, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, 0, nil
}

func messageBody(o options, n int64) []byte {
	b := plainBody(o, n)
	if o.category != "" {
		b = append(append(b[:len(b)-1], `,"category":"`+o.category+`"`...), '}')
	}
	return b
}

func plainBody(o options, n int64) []byte {
	switch {
	case o.poison:
		// Text PostgreSQL cannot store, and a repeated key: all refused at the door.
		return []byte([]string{`{"channel":"sms","to":"+14155550123","text":"a\u0000b"}`, "{\"channel\":\"sms\",\"to\":\"+14155550123\",\"text\":\"\xff\"}",
			`{"channel":"sms","to":"+14155550123","to":"+14155550124","text":"x"}`}[n%3])
	case o.channel == "sms":
		return fmt.Appendf(nil, `{"channel":"sms","to":"+1415555%04d","text":"Your code is %06d"}`, n%10000, n%1000000)
	}
	return fmt.Appendf(nil, `{"channel":"email","to":"user%d@example.com","subject":"Welcome","text":"Hello number %d"}`, n%10000, n)
}

func createTenants(ctx context.Context, c *http.Client, o options) (ids, keys []string, err error) {
	for i := 0; i < o.tenants; i++ {
		id, secret, err := newTenantKey(ctx, c, o.url, o.adminKey, fmt.Sprintf("loadgen %d", i))
		if err != nil {
			return nil, nil, err
		}
		if o.webhooks {
			if err := addWebhookEndpoint(ctx, c, o, secret); err != nil {
				return nil, nil, err
			}
		}
		if o.category != "" {
			cat := map[string]any{"key": o.category, "name": o.category, "default": "in"}
			if err := sendJSON(ctx, c, "POST", o.url+"/v1/categories", secret, cat, &struct{}{}); err != nil {
				return nil, nil, fmt.Errorf("create category: %w", err)
			}
		}
		ids, keys = append(ids, id), append(keys, secret)
	}
	return ids, keys, nil
}

// endToEnd waits for the run's messages to be final (warm-up ones too), then computes delivery
// figures from the created_at (accepted) and sent_at timestamps of those accepted from
// measureFrom on. Every message of the run was made after start: its count reads the current
// weeks' partitions, not a seeded history whole (1.5 s and 3.4 GB read a count on 10 million
// messages, on the machine being measured).
func endToEnd(ctx context.Context, o options, tenantIDs []string, start, measureFrom time.Time) (*e2eReport, error) {
	conn, err := pgx.Connect(ctx, o.dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect for end-to-end figures: %w", err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(o.drain)
	e := &e2eReport{ByStatus: map[string]int{}}
	for {
		clear(e.ByStatus)
		rows, err := conn.Query(ctx, `SELECT status, count(*) FROM communication.message_logs
			WHERE tenant_id = ANY($1) AND created_at >= $2 GROUP BY status`, tenantIDs, start.Add(-time.Minute))
		if err != nil {
			return nil, err
		}
		var st string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&st, &n}, func() error { e.ByStatus[st] = n; return nil }); err != nil {
			return nil, err
		}
		if e.ByStatus["queued"]+e.ByStatus["sending"] == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for s, n := range e.ByStatus {
		if s != "queued" && s != "sending" {
			e.Final += n
		}
	}
	rows, err := conn.Query(ctx, `SELECT created_at, sent_at FROM communication.message_logs
		WHERE tenant_id = ANY($1) AND sent_at IS NOT NULL AND created_at >= $2 ORDER BY sent_at`, tenantIDs, measureFrom)
	if err != nil {
		return nil, err
	}
	var (
		created, sent time.Time
		lat           []time.Duration
		first, last   time.Time
		perSecond     = map[int64]int{}
	)
	if _, err := pgx.ForEachRow(rows, []any{&created, &sent}, func() error {
		if first.IsZero() || created.Before(first) {
			first = created
		}
		last = sent
		lat = append(lat, sent.Sub(created))
		perSecond[sent.Unix()]++
		return nil
	}); err != nil {
		return nil, err
	}
	if len(lat) == 0 {
		return e, errors.New("no message was sent")
	}
	e.DeliveredPS = float64(len(lat)) / last.Sub(first).Seconds()
	// Steady state: the median of the per-second counts, excluding the first and last seconds.
	var secs []int
	for s, n := range perSecond {
		if s != first.Unix() && s != last.Unix() {
			secs = append(secs, n)
		}
	}
	if len(secs) > 0 {
		sort.Ints(secs)
		e.SteadyPS = float64(secs[len(secs)/2])
	}
	e.AcceptToSent = pct(lat)
	return e, nil
}
