// Package stacktest assembles the real service in-process for tests and benchmarks: a fresh
// PostgreSQL database, a Redis prefix, an in-process Kafka-protocol broker, the intake and API
// served over real HTTP, workers whose sandbox provider records every delivery, and the sweeper.
package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/callbacks/apply"
	"github.com/logicspike/comms/internal/dashboard"
	"github.com/logicspike/comms/internal/dispatch/dlq"
	"github.com/logicspike/comms/internal/dispatch/pricer"
	"github.com/logicspike/comms/internal/dispatch/retrier"
	"github.com/logicspike/comms/internal/dispatch/scheduler"
	"github.com/logicspike/comms/internal/dispatch/sweeper"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/events"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/testing/apispec"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/client"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/sandbox"
)

// Options shape a stack.
type Options struct {
	Partitions       int32
	SandboxLatencyMS int
	// Publisher replaces the intake's Kafka producer (to make produce fail, say).
	Publisher intake.Publisher
	Sweeper   sweeper.Config // zero: no sweeper runs
	// AuthCacheTTL for the API (default 0: every request reads the key from the database).
	AuthCacheTTL time.Duration
	// Env points the provider adapters at fakes (AllowInsecure and loopback dialling are on
	// either way: every fake listens on 127.0.0.1).
	Env provider.Env
	// Log receives every service's log output (default: errors to stderr).
	Log *slog.Logger
	// Pool is the database (default: a fresh one from testenv); fault tests pass one that reaches
	// PostgreSQL through a proxy they can cut.
	Pool *pgxpool.Pool
	// Limiter for intake and send caps (default: on the stack's Redis).
	Limiter *ratelimit.Limiter
	// RouteCacheTTL of the workers (default 1s). Config changes also reach them at once through
	// Redis invalidation notices.
	RouteCacheTTL time.Duration
	// WebhookTimeout bounds test sends to webhook endpoints (default 15 s).
	WebhookTimeout time.Duration
	// ApplyInterval and EventsInterval are how often the callback applier and the events
	// publisher look for work when idle (defaults 20 ms and 10 ms; production's are 100 ms and
	// 50 ms, which benchmarks of latency set).
	ApplyInterval, EventsInterval time.Duration
}

// TestKeys is the stack's key ring.
const TestKeys = "v1:dGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY="

// Stack is a running service.
type Stack struct {
	tb       testing.TB
	Pool     *pgxpool.Pool
	Store    *store.Store
	Brokers  []string
	Producer *queue.Producer
	Recorder *sandbox.Recorder
	Ring     *secrets.Ring
	Webhooks *webhooks.Service
	// APIServer is the API the stack serves at URL; FlushKeyUses writes the keys' last uses now.
	APIServer *api.Server
	Registry  *registry.Registry
	Intake    *intake.Service
	URL       string
	AdminKey  string
	Log       *slog.Logger
	Client    *http.Client
	groupID   string
	rdb       *redis.Client
	prefix    string
	routeTTL  time.Duration
	limiter   *ratelimit.Limiter

	applyEvery, eventsEvery time.Duration
}

// Logger is quiet: errors only, to stderr.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// Start builds a stack for tb; everything stops when tb ends.
func Start(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	pool := opts.Pool
	if pool == nil {
		pool = testenv.DB(tb)
	}
	rdb, prefix := testenv.Redis(tb)
	if err := tracing.Redis(rdb); err != nil {
		tb.Fatal(err)
	}
	brokers := testenv.Kafka(tb, opts.Partitions, queue.AllTopics()...)
	st := store.New(pool)
	log := opts.Log
	if log == nil {
		log = Logger()
	}
	s := &Stack{tb: tb, Pool: pool, Store: st, Brokers: brokers, Recorder: sandbox.NewRecorder(), Log: log,
		Client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 30 * time.Second},
		groupID: "test-" + ids.Random(8), rdb: rdb, prefix: prefix, routeTTL: opts.RouteCacheTTL, limiter: opts.Limiter,
		applyEvery: opts.ApplyInterval, eventsEvery: opts.EventsInterval}
	if s.applyEvery == 0 {
		s.applyEvery = 20 * time.Millisecond
	}
	if s.eventsEvery == 0 {
		s.eventsEvery = 10 * time.Millisecond
	}
	if s.limiter == nil {
		s.limiter = ratelimit.New(rdb, prefix)
	}
	if s.routeTTL == 0 {
		s.routeTTL = time.Second
	}
	ring, err := secrets.ParseRing(TestKeys)
	if err != nil {
		tb.Fatal(err)
	}
	env := opts.Env
	env.AllowInsecure = true
	s.Registry = registry.New(ring, env, s.Recorder)
	ctx := context.Background()
	if _, err := app.EnsureSandboxDefaults(ctx, st, opts.SandboxLatencyMS); err != nil {
		tb.Fatal(err)
	}
	_, admin, err := st.CreateAPIKey(ctx, store.KindAdmin, "", "test admin", nil)
	if err != nil {
		tb.Fatal(err)
	}
	s.AdminKey = admin

	s.Producer = queue.NewProducer(brokers, queue.TopicSend)
	pub := opts.Publisher
	if pub == nil {
		pub = s.Producer
	}
	tmplCache := templates.NewCache(rdb, prefix, log)
	tmpl := templates.New(st, tmplCache, log)
	s.Intake = intake.New(st, intake.NewIdempotencyCache(rdb, prefix), pub, log).WithTemplates(tmpl).
		WithQuotas(quota.New(rdb, prefix, st, log))
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	sched := scheduler.New(scheduler.Config{Interval: 20 * time.Millisecond}, st, pub, log)
	wg.Add(3)
	go func() { defer wg.Done(); s.Intake.Run(bg) }()
	go func() { defer wg.Done(); tmplCache.Run(bg) }()
	go func() { defer wg.Done(); sched.Run(bg) }()
	if opts.Sweeper.Interval > 0 {
		sw := sweeper.New(opts.Sweeper, st, s.Producer, log)
		wg.Add(1)
		go func() { defer wg.Done(); sw.Run(bg) }()
	}
	notifier := invalidate.NewNotifier(rdb, prefix, log)
	ps := providerconfig.New(st, s.Registry, log, 10*time.Second).WithNotifier(notifier)
	s.Ring = ring
	// Test receivers listen on loopback, which production refuses; the URL checks have their own tests.
	s.Webhooks = webhooks.NewService(webhooks.ServiceConfig{Dial: netguard.DialFunc(5*time.Second, true), AllowPrivate: true,
		Timeout: opts.WebhookTimeout, Notifier: notifier}, st, ring, log)
	s.APIServer = api.New(st, s.Intake, log, api.Options{AuthCacheTTL: opts.AuthCacheTTL, Providers: ps, Templates: tmpl, Webhooks: s.Webhooks, DLQ: dlq.New(st, s.Producer, log), Limiter: s.limiter, Notifier: notifier})
	wg.Add(1)
	go func() { defer wg.Done(); s.APIServer.Run(bg) }()
	srv := httptest.NewServer(tracing.Handler(dashboard.WithAPI(s.APIServer, dashboard.New(st, s.APIServer, log)), "api"))
	s.URL = srv.URL
	s.Client.Transport = specChecked(tb, s.Client.Transport, srv.Listener.Addr().String())
	tb.Cleanup(func() {
		srv.Close()
		stop()
		wg.Wait()
		_ = s.Producer.Close()
	})
	return s
}

// Worker is a running worker.
type Worker struct {
	*worker.Worker
	stop context.CancelFunc
	done chan struct{} // closed when Run returned; err is then set
	err  error
}

// Stop shuts the worker down gracefully and waits.
func (w *Worker) Stop() error {
	w.stop()
	<-w.done
	return w.err
}

// Kill crashes the worker (see worker.Crash) and waits for it to be gone.
func (w *Worker) Kill() {
	w.Crash()
	<-w.done
}

// StartWorker starts a worker in the stack's consumer group with the recording sandbox, and a
// retrier for its retry tiers.
func (s *Stack) StartWorker(cfg worker.Config) *Worker {
	s.tb.Helper()
	if cfg.SendLimiter == nil {
		cfg.SendLimiter = s.limiter
	}
	dlq := queue.NewProducer(s.Brokers, queue.TopicDLQ)
	retries := queue.NewProducer(s.Brokers, "")
	router := worker.NewRouter(s.Store, app.Factory(s.Registry), s.routeTTL, s.Log)
	if cfg.Announcer == nil {
		cfg.Announcer = invalidate.NewNotifier(s.rdb, s.prefix, s.Log)
	}
	cfg.Brokers, cfg.Group = s.Brokers, s.groupID
	w, err := worker.New(cfg, s.Store, router, dlq, retries, s.Log)
	if err != nil {
		s.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go invalidate.Listen(ctx, s.rdb, s.prefix, s.Log, router.Invalidate)
	rw := &Worker{Worker: w, stop: cancel, done: make(chan struct{})}
	retrierDone := make(chan struct{})
	rt := retrier.New(retrier.Config{Brokers: s.Brokers, Group: s.groupID + "-retrier", CommitInterval: 20 * time.Millisecond}, s.Log)
	go app.ListenForRecoveries(ctx, s.rdb, s.prefix, s.Log, w, rt)
	go func() {
		defer close(retrierDone)
		rt.Run(ctx)
	}()
	go apply.Fold(ctx, s.Store, 50*time.Millisecond, s.Log)
	go pricer.New(pricer.Config{Interval: 20 * time.Millisecond, Delay: time.Millisecond, Retry: 50 * time.Millisecond}, s.Store, s.Registry, s.Log).Run(ctx)
	evProd := queue.NewProducer(s.Brokers, queue.TopicEvents)
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		events.New(events.Config{Interval: s.eventsEvery}, s.Store, evProd, s.Log).Run(ctx)
	}()
	go func() {
		defer close(rw.done)
		rw.err = w.Run(ctx)
		cancel() // a crashed or stopped worker takes its retrier with it
		<-retrierDone
		<-eventsDone
		_ = evProd.Close()
		_ = dlq.Close()
		_ = retries.Close()
	}()
	s.tb.Cleanup(func() {
		cancel()
		select {
		case <-rw.done:
		case <-time.After(30 * time.Second):
		}
	})
	return rw
}

// GroupID is the consumer group of the stack's workers.
func (s *Stack) GroupID() string { return s.groupID }

// Tenant creates a tenant with a key and returns both.
func (s *Stack) Tenant() (tenantID, key string) {
	s.tb.Helper()
	ctx := context.Background()
	t, err := s.Store.CreateTenant(ctx, store.NewTenant{Name: "tenant " + ids.Random(4), AllowSystemFallback: true})
	if err != nil {
		s.tb.Fatal(err)
	}
	_, key, err = s.Store.CreateAPIKey(ctx, store.KindTenant, t.ID, "test", nil)
	if err != nil {
		s.tb.Fatal(err)
	}
	return t.ID, key
}

// Do sends a request with key (and optional extra headers) and decodes a JSON answer into out.
func (s *Stack) Do(method, path, key string, body any, headers map[string]string, out any) *http.Response {
	s.tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.tb.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.tb.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp
}

// Send posts a message and returns its id, failing the test unless it is accepted.
func (s *Stack) Send(key, idemKey string, req message.Request) string {
	s.tb.Helper()
	acc, err := s.API(key).Send(context.Background(), req, idemKey)
	if err != nil {
		s.tb.Fatalf("send: %v", err)
	}
	return acc.ID
}

// API is a client of the stack's API with key.
func (s *Stack) API(key string) *client.Client {
	return client.New(s.URL, key, client.WithHTTPClient(s.Client))
}

// CountByStatus returns how many messages are in each status.
func (s *Stack) CountByStatus(ctx context.Context) (map[message.Status]int, error) {
	rows, err := s.Pool.Query(ctx, `SELECT status, count(*) FROM communication.message_logs GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[message.Status]int{}
	for rows.Next() {
		var st message.Status
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// WaitAllFinal waits until every message is in a final status, or fails after timeout.
//
// The timeout is a liveness bound, not a speed assertion, so it is doubled: the whole suite under
// the race detector on two cores, dozens of stacks each with its own broker, has been seen to
// take over 30 s to consume an intent.
func (s *Stack) WaitAllFinal(timeout time.Duration) map[message.Status]int {
	s.tb.Helper()
	timeout *= 2
	deadline := time.Now().Add(timeout)
	for {
		counts, err := s.CountByStatus(context.Background())
		if err != nil {
			s.tb.Fatal(err)
		}
		if counts[message.Scheduled]+counts[message.Queued]+counts[message.Sending] == 0 {
			return counts
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("messages not final after %s: %v", timeout, counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FailingPublisher fails every publish, as a broker that is down would.
type FailingPublisher struct{}

// Publish implements intake.Publisher.
func (FailingPublisher) Publish(context.Context, ...queue.Envelope) error {
	return fmt.Errorf("broker unreachable (simulated)")
}

// DroppingPublisher reports every publish as done and publishes nothing: every intent is lost
// after its message was marked published, as if a record vanished from the topic.
type DroppingPublisher struct{}

// Publish implements intake.Publisher.
func (DroppingPublisher) Publish(context.Context, ...queue.Envelope) error { return nil }

// specChecked validates every exchange of the stack's client with the API at apiHost against
// docs/openapi.json (apispec): a test whose requests or answers drift from the document fails.
func specChecked(tb testing.TB, rt http.RoundTripper, apiHost string) http.RoundTripper {
	v, err := apispec.Load()
	if err != nil {
		tb.Fatal(err)
	}
	return v.Transport(rt, apiHost, func(err error) { tb.Errorf("openapi.json: %v", err) })
}
