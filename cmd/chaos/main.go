// Command chaos runs the dev stack as separate processes under steady load while a script of
// faults and abuse plays out (processes killed and restarted, PostgreSQL, Redis and the broker
// restarted, floods of poison, bad keys and idle connections, the tenant's provider down and then
// recovered), then waits for every accepted message to finish and prints what happened to them:
// accepted, sent, lost (must be 0), unfinished at the end (must be 0), duplicates (only inside the
// documented window) and the longest stalls. It exits non-zero when a message was lost, left
// unfinished or sent twice outside the window.
//
// It restarts this machine's PostgreSQL and Redis: run it on a development machine only
// (make chaos builds the binaries first).
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
)

// ready is the log line each service prints once it serves ("" : none to wait for).
var ready = map[string]string{"api": "listening", "webhook": "listening", "worker": ""}

type options struct {
	bin, dir, adminURL, dbName string
	rate                       int
	duration, drain, latency   time.Duration
	outage                     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory of the built binaries (dev, api, worker, webhook)")
	flag.StringVar(&o.dir, "logs", "", "directory for the processes' logs (default: a new temporary one)")
	flag.StringVar(&o.adminURL, "admin-db", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL maintenance database")
	flag.StringVar(&o.dbName, "db", "comms_chaos", "database to create afresh for the run")
	flag.IntVar(&o.rate, "rate", 100, "steady load, messages per second")
	flag.DurationVar(&o.duration, "duration", 3*time.Minute, "how long the script runs (its steps are spread over it)")
	flag.DurationVar(&o.drain, "drain", 3*time.Minute, "how long to wait afterwards for every accepted message to finish")
	flag.DurationVar(&o.latency, "provider-latency", 50*time.Millisecond, "how long the tenant's provider takes to answer a send")
	flag.DurationVar(&o.outage, "provider-outage", 30*time.Second, "how long the tenant's provider answers 503 near the end of the script, before it recovers")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// step is one entry of the script, at a fraction of the run.
type step struct {
	at   float64
	name string
	do   func(ctx context.Context) string // returns what happened, for the log
}

func run(ctx context.Context, o options) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "comms-chaos-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	dbURL := strings.Replace(o.adminURL, "/postgres?", "/"+o.dbName+"?", 1)
	if err := freshDatabase(ctx, o.adminURL, o.dbName); err != nil {
		return err
	}
	const api, hook, broker = "127.0.0.1:18080", "127.0.0.1:18081", "127.0.0.1:19092"
	s := &stack{bin: o.bin, dir: o.dir, procs: map[string]*exec.Cmd{}, env: []string{
		"COMMS_DATABASE_URL=" + dbURL, "COMMS_REDIS_PREFIX=comms-chaos:", "COMMS_KAFKA_BROKERS=" + broker,
		"COMMS_API_ADDR=" + api, "COMMS_WEBHOOK_ADDR=" + hook, "COMMS_METRICS_ADDR=127.0.0.1:0",
		"COMMS_ENCRYPTION_KEYS=dev:ZGV2LW9ubHkta2V5LW5ldmVyLXVzZS1pbi1wcm9kISE=", "COMMS_ALLOW_PRIVATE_NETWORKS=true",
		"COMMS_LOG_LEVEL=info", "COMMS_LOG_FORMAT=text", "COMMS_SHUTDOWN_TIMEOUT=5s", "COMMS_API_MAX_CONNS=2048",
	}}
	defer s.stop()
	startBroker := func() error {
		return s.start("broker", "dev", "kafka:", "COMMS_DEV_BROKER_ONLY=true", "COMMS_DEV_KAFKA_PORT=19092", "COMMS_KAFKA_BROKERS=")
	}
	if err := startBroker(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, dbURL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := db.Migrate(ctx, pool); err != nil {
		return err
	}
	st := store.New(pool)
	tenant, err := st.CreateTenant(ctx, domain.NewTenant{Name: "steady"})
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `UPDATE communication.tenants SET rate_per_second = 0`); err != nil {
		return err
	}
	_, key, _ := st.CreateAPIKey(ctx, domain.KindTenant, tenant.ID, "chaos", nil)
	poisoner, _ := st.CreateTenant(ctx, domain.NewTenant{Name: "poisoner"})
	_, poisonKey, _ := st.CreateAPIKey(ctx, domain.KindTenant, poisoner.ID, "chaos", nil)
	for _, name := range []string{"api", "worker", "webhook"} {
		if err := s.start(name, name, ready[name]); err != nil {
			return err
		}
	}
	prov, err := startProvider(ctx, o.latency)
	if err != nil {
		return err
	}
	defer prov.srv.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("c", 32)))
	cfgBody := fmt.Sprintf(`{"type":"webhook","name":"counting","channel":"sms","test_recipient":"+14155550100","credentials":{"url":"http://%s/hook","secret":"%s"}}`, prov.addr, secret)
	if code := post(ctx, client, "http://"+api+"/v1/providers", key, cfgBody); code != http.StatusCreated {
		return fmt.Errorf("add the counting provider: %d", code)
	}

	l := &load{url: "http://" + api, key: key, client: client, accepted: map[string]time.Time{}}
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	loadDone := make(chan struct{})
	start := time.Now()
	go func() { defer close(loadDone); l.run(loadCtx, o.rate) }()

	restart := func(name string) func(context.Context) string {
		return func(context.Context) string {
			s.kill(name)
			time.Sleep(2 * time.Second)
			if err := s.start(name, name, ready[name]); err != nil {
				return "restart failed: " + err.Error()
			}
			return "killed (SIGKILL), restarted 2 s later"
		}
	}
	badClient := &http.Client{Timeout: 5 * time.Second}
	script := []step{
		{0.06, "worker killed", restart("worker")},
		{0.12, "api killed", restart("api")},
		{0.18, "webhook killed", restart("webhook")},
		{0.26, "PostgreSQL restarted", func(ctx context.Context) string { return errText(restartPostgres(ctx), "restarted (fast)") }},
		{0.36, "Redis restarted", func(ctx context.Context) string { return errText(restartRedis(ctx), "restarted, empty") }},
		{0.46, "broker restarted", func(ctx context.Context) string {
			s.kill("broker")
			time.Sleep(2 * time.Second)
			if err := startBroker(); err != nil {
				return "restart failed: " + err.Error()
			}
			// kfake keeps nothing: the new broker has lost every intent, as a Kafka cluster
			// restored from nothing has. The runbook step for that: requeue the outbox.
			n, err := st.ForgetPublished(ctx)
			return errText(err, fmt.Sprintf("killed, restarted empty 2 s later; outbox requeue: %d unfinished messages", n))
		}},
		{0.58, "poison flood", func(ctx context.Context) string {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var codes statusCounts
			flood(c, 32, func(i int) {
				body := []string{`{"channel":"sms","to":"+14155550123","text":"a\u0000b"}`, "{\"channel\":\"sms\",\"to\":\"+14155550123\",\"text\":\"\xff\"}",
					`{"channel":"sms","to":"+14155550123","to":"+14155550124","text":"x"}`}[i%3]
				codes.add(post(c, badClient, "http://"+api+"/v1/messages", poisonKey, body))
			})
			return "10 s from another tenant, 32 connections (NUL, invalid UTF-8, repeated key): answers " + codes.String()
		}},
		{0.70, "bad-key flood", func(ctx context.Context) string {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var codes statusCounts
			flood(c, 32, func(i int) {
				codes.add(post(c, badClient, "http://"+api+"/v1/messages", fmt.Sprintf("ck_tenant_bogus%d", i), `{}`))
			})
			return "10 s, 32 connections, a new key each request: answers " + codes.String()
		}},
		{0.82, "connection flood", func(ctx context.Context) string {
			c, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			return fmt.Sprintf("%d idle connections held for 15 s (cap 2,048)", holdConnections(c, api, 5000))
		}},
		{0.88, "provider outage", func(ctx context.Context) string {
			// Breakers open, intents park and retries wait; on recovery every one must be sent.
			prov.down.Store(true)
			select {
			case <-ctx.Done():
			case <-time.After(o.outage):
			}
			prov.down.Store(false)
			return fmt.Sprintf("the tenant's only provider answered 503 for %s, then recovered", o.outage)
		}},
	}
	logf := func(format string, args ...any) {
		fmt.Printf("%6.1fs  "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	for _, st := range script {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(time.Duration(st.at * float64(o.duration))))):
		}
		logf("%s: %s", st.name, st.do(ctx))
	}
	<-loadDone
	logf("load stopped: %d accepted, %d requests retried, %d given up", len(l.accepted), l.retries.Load(), l.gaveUp.Load())

	res, err := settle(ctx, pool, l, prov, o.drain)
	if err != nil {
		return err
	}
	logf("settled")
	res.print(os.Stdout, o, start)
	fmt.Printf("\nlogs: %s\n", o.dir)
	if res.lost > 0 || res.unfinished > 0 || res.dupOutside > 0 {
		return fmt.Errorf("%d lost, %d unfinished, %d duplicates outside the documented window", res.lost, res.unfinished, res.dupOutside)
	}
	return nil
}

// statusCounts counts HTTP answers by status (0: no answer).
type statusCounts struct{ n [600]atomic.Int64 }

func (c *statusCounts) add(code int) { c.n[min(max(code, 0), 599)].Add(1) }

func (c *statusCounts) String() string {
	var parts []string
	for code := range c.n {
		if n := c.n[code].Load(); n > 0 {
			parts = append(parts, fmt.Sprintf("%d × %d", n, code))
		}
	}
	return strings.Join(parts, ", ")
}

func errText(err error, ok string) string {
	if err != nil {
		return "failed: " + err.Error()
	}
	return ok
}

func freshDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+name)
	return err
}

type result struct {
	accepted, sent, failed, lost, unfinished, dups, dupInside, dupOutside, unseen int
	intakeStall, deliveryStall                                                    gap
	gaveUp                                                                        int64
}

// settle waits up to drain for every accepted message to finish, then counts.
func settle(ctx context.Context, pool interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, l *load, p *provider, drain time.Duration) (result, error) {
	ids := make([]string, 0, len(l.accepted))
	for id := range l.accepted {
		ids = append(ids, id)
	}
	type row struct {
		status   string
		attempts int
	}
	var rows map[string]row
	deadline := time.Now().Add(drain)
	for {
		rows = map[string]row{}
		rs, err := pool.Query(ctx, `SELECT id, status, attempts FROM communication.message_logs WHERE id = ANY($1)`, ids)
		if err != nil {
			if time.Now().After(deadline) {
				return result{}, err
			}
			time.Sleep(time.Second)
			continue
		}
		var id, status string
		var attempts int
		_, err = pgx.ForEachRow(rs, []any{&id, &status, &attempts}, func() error { rows[id] = row{status, attempts}; return nil })
		if err != nil {
			return result{}, err
		}
		final := 0
		for _, r := range rows {
			if r.status == "sent" || r.status == "failed" {
				final++
			}
		}
		if final == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	res := result{accepted: len(ids), gaveUp: l.gaveUp.Load()}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		r, ok := rows[id]
		switch {
		case !ok:
			res.lost++
		case r.status != "sent" && r.status != "failed":
			res.unfinished++
		case r.status == "sent":
			res.sent++
		default:
			res.failed++
		}
		if ok && r.status == "sent" && p.calls[id] == 0 {
			res.unseen++
		}
		if n := p.calls[id]; n > 1 {
			res.dups++
			// The documented window: a crash after the provider took the message and before the
			// outcome was recorded, so the lease expired and a later attempt sent it again. Each
			// send then belongs to an attempt of its own.
			if ok && r.attempts >= n {
				res.dupInside++
			} else {
				res.dupOutside++
			}
		}
	}
	res.intakeStall = longestGap(l.accepted)
	res.deliveryStall = longestGap(p.first)
	return res, nil
}

// gap is a stretch of time without an event.
type gap struct {
	from time.Time
	d    time.Duration
}

// longestGap is the longest time between consecutive events.
func longestGap(at map[string]time.Time) gap {
	ts := make([]time.Time, 0, len(at))
	for _, t := range at {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var g gap
	for i := 1; i < len(ts); i++ {
		if d := ts[i].Sub(ts[i-1]); d > g.d {
			g = gap{from: ts[i-1], d: d}
		}
	}
	return g
}

func (r result) print(w io.Writer, o options, start time.Time) {
	fmt.Fprintf(w, "\nchaos run of %s at %d messages/s (started %s UTC)\n\n", o.duration, o.rate, start.UTC().Format("2006-01-02 15:04"))
	fmt.Fprintln(w, "| accepted | sent | failed | lost | unfinished at the end | duplicates (inside window / outside) | sent, provider never called | longest intake stall | longest delivery stall |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %d (%d / %d) | %d | %.1f s (at %.0f s) | %.1f s (at %.0f s) |\n", r.accepted, r.sent, r.failed, r.lost, r.unfinished,
		r.dups, r.dupInside, r.dupOutside, r.unseen, r.intakeStall.d.Seconds(), r.intakeStall.from.Sub(start).Seconds(),
		r.deliveryStall.d.Seconds(), r.deliveryStall.from.Sub(start).Seconds())
	if r.gaveUp > 0 {
		fmt.Fprintf(w, "\n%d requests were never accepted within a minute of retries (not counted as accepted)\n", r.gaveUp)
	}
}
