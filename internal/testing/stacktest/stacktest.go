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
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/dispatch/pricer"
	"github.com/logicspike/comms/internal/dispatch/retrier"
	"github.com/logicspike/comms/internal/dispatch/scheduler"
	"github.com/logicspike/comms/internal/dispatch/sweeper"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/events"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/platform/runner"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
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

// PublicURL is where the stack's emails say the public receiver is (unsubscribe links).
const PublicURL = "https://hooks.comms.test"

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
	parts     int32 // partitions of each topic
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
		groupID: "test-" + ids.Random(8), parts: opts.Partitions, rdb: rdb, prefix: prefix, routeTTL: opts.RouteCacheTTL, limiter: opts.Limiter,
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
	_, admin, err := st.CreateAPIKey(ctx, domain.KindAdmin, "", "test admin", nil)
	if err != nil {
		tb.Fatal(err)
	}
	s.AdminKey = admin

	s.Producer = queue.NewProducer(brokers, queue.TopicSend)
	var sweep *sweeper.Config
	if opts.Sweeper.Interval > 0 {
		sweep = &opts.Sweeper
	}
	s.Ring = ring
	// The production wiring (app.NewAPIProcess) behind an httptest server. Test receivers listen
	// on loopback, which production refuses; the URL checks have their own tests.
	p := app.NewAPIProcess(app.APIParts{
		Store: st, Redis: rdb, Prefix: prefix, Log: log, Registry: s.Registry,
		Producer: s.Producer, Publisher: opts.Publisher, Sweeper: sweep,
		Scheduler:           scheduler.Config{Interval: 20 * time.Millisecond},
		AuthCacheTTL:        opts.AuthCacheTTL,
		RouteTTL:            s.routeTTL,
		TestTimeout:         10 * time.Second,
		Webhooks:            webhooks.ServiceConfig{Dial: netguard.DialFunc(5*time.Second, true), AllowPrivate: true, Timeout: opts.WebhookTimeout},
		AllowPrivateNetwork: true,
		Limiter:             s.limiter,
	})
	s.Intake, s.APIServer, s.Webhooks = p.Intake, p.Server, p.Webhooks
	bg, stop := context.WithCancel(ctx)
	behind := make(chan error, 1)
	go func() { behind <- runner.Run(bg, log, p.Behind...) }()
	srv := httptest.NewServer(p.Handler)
	s.URL = srv.URL
	s.Client.Transport = specChecked(tb, s.Client.Transport, srv.Listener.Addr().String())
	tb.Cleanup(func() {
		p.Streams.Close() // as the production server does on shutdown: open streams end first
		srv.Close()
		stop()
		if err := <-behind; err != nil {
			tb.Errorf("stack: %v", err)
		}
		_ = s.Producer.Close()
	})
	return s
}

// Worker is a running worker.
type Worker struct {
	*worker.Worker
	stop context.CancelCauseFunc
	done chan struct{} // closed when Run returned; err is then set
	err  error
}

// Stop shuts the worker down gracefully and waits.
func (w *Worker) Stop() error {
	w.stop(nil)
	<-w.done
	return w.err
}

// Kill stops the worker process as a kill would (queue.ErrKilled: in-flight work cancelled,
// nothing more committed) and waits for it to be gone.
func (w *Worker) Kill() {
	w.stop(queue.ErrKilled)
	<-w.done
}

// StartWorker starts a worker in the stack's consumer group with the recording sandbox, and a
// retrier for its retry tiers.
func (s *Stack) StartWorker(cfg worker.Config) *Worker {
	s.tb.Helper()
	if cfg.SendLimiter == nil {
		cfg.SendLimiter = s.limiter
	}
	// The production wiring (app.NewWorkerProcess), with the recording sandbox and short
	// intervals; webhook deliverers are started by the tests that want them (StartDeliverer).
	wp, err := app.NewWorkerProcess(app.WorkerParts{
		Store: s.Store, Redis: s.rdb, Prefix: s.prefix, Log: s.Log, Registry: s.Registry,
		Brokers: s.Brokers, Group: s.groupID, Worker: cfg, RouteTTL: s.routeTTL,
		Retrier: retrier.Config{CommitInterval: 20 * time.Millisecond},
		Fold:    50 * time.Millisecond,
		Pricer:  pricer.Config{Interval: 20 * time.Millisecond, Delay: time.Millisecond, Retry: 50 * time.Millisecond},
		Events:  events.Config{Interval: s.eventsEvery},
		Ring:    s.Ring, PublicURL: PublicURL,
	})
	if err != nil {
		s.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	rw := &Worker{Worker: wp.Worker, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		// A crashed worker stops the process's other parts with it, as in production.
		rw.err = wp.Run(ctx)
	}()
	s.tb.Cleanup(func() {
		cancel(nil)
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
	t, err := s.Store.CreateTenant(ctx, domain.NewTenant{Name: "tenant " + ids.Random(4), AllowSystemFallback: true})
	if err != nil {
		s.tb.Fatal(err)
	}
	_, key, err = s.Store.CreateAPIKey(ctx, domain.KindTenant, t.ID, "test", nil)
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
	var acc client.Accepted
	var opts []client.CallOption
	if idemKey != "" {
		opts = append(opts, client.IdempotencyKey(idemKey))
	}
	// Do rather than SendMessage: a test that gives no key sends none.
	if err := s.API(key).Do(context.Background(), http.MethodPost, "/v1/messages", req, &acc, opts...); err != nil {
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
			s.tb.Fatalf("messages not final after %s: %v\n%s", timeout, counts, s.whereStuck())
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
