// Command dev runs the whole service in one process for local development: an embedded
// Kafka-protocol broker (kfake, in memory), migrations, a demo tenant with an API key, sandbox
// system defaults for both channels, and the api, worker and webhook services. It needs only
// PostgreSQL and Redis. Production runs the three binaries against a real Kafka instead.
//
// Settings are the services' own (docs/operations.md) plus:
//
//	COMMS_DEV_KAFKA_PORT         port of the embedded broker (default 9092; 0 picks a free one)
//	COMMS_DEV_SANDBOX_LATENCY_MS how long the sandbox provider takes to answer (default 0)
//	COMMS_DEV_WORKER             "off" runs no worker (to measure the intake alone)
//	COMMS_DEV_PPROF_ADDR         if set, serve net/http/pprof there (for profiling under load)
//	COMMS_DEV_BROKER_ONLY        "true" runs only the embedded broker, with the topics created
//
// If COMMS_KAFKA_BROKERS is set, the stack uses that broker instead of embedding one; its topics
// must exist (commsctl topics, or a second dev runner with COMMS_DEV_BROKER_ONLY=true). The
// benchmarks run the broker that way: kfake keeps every record in its heap, and in one process
// with the services the collector would scan that log on the services' time, which a real Kafka
// never costs them.
package main

import (
	"context"
	"fmt"
	"net/http"
	_ "net/http/pprof" //nolint:gosec // dev runner only; the profiles are served only when COMMS_DEV_PPROF_ADDR is set
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/logicspike/comms/internal/app"
	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// devDefaults fill settings the environment leaves unset. The encryption key is public (it is
// in this file): it only protects dev data, and production refuses to start without its own.
var devDefaults = map[string]string{
	"COMMS_LOG_FORMAT":             "text", // people read the dev runner's logs
	"COMMS_ENCRYPTION_KEYS":        "dev:ZGV2LW9ubHkta2V5LW5ldmVyLXVzZS1pbi1wcm9kISE=",
	"COMMS_ALLOW_PRIVATE_NETWORKS": "true", // so a webhook or SMTP config may point at localhost
	"COMMS_DRAIN_DELAY":            "0s",   // no load balancer to wait for: Ctrl-C stops at once
}

func main() {
	if app.AskedForVersion("dev", os.Args[1:], os.Stdout) {
		return
	}
	app.TuneGC()
	app.RecordBuildInfo("dev")
	cfg, err := config.Load(func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return devDefaults[name]
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "dev: bad configuration:\n%v\n", err)
		os.Exit(2)
	}
	// The embedded broker speaks plain TCP; an external one as configured.
	kafka, err := queue.SettingsFrom(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dev: bad configuration:\n%v\n", err)
		os.Exit(2)
	}
	kafka.Log = cfg.Logger().With("service", "dev")
	queue.Configure(kafka)
	app.RouteLibraryLogs(kafka.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: must be a non-negative integer", name, v)
	}
	return n, nil
}

func run(ctx context.Context, cfg config.Config) error {
	port, err := envInt("COMMS_DEV_KAFKA_PORT", 9092)
	if err != nil {
		return err
	}
	latency, err := envInt("COMMS_DEV_SANDBOX_LATENCY_MS", 0)
	if err != nil {
		return err
	}
	log := cfg.Logger()
	if addr := os.Getenv("COMMS_DEV_PPROF_ADDR"); addr != "" {
		go func() { log.Error("pprof server stopped", "err", http.ListenAndServe(addr, nil)) }() //nolint:gosec // dev-only, loopback
	}

	external := os.Getenv("COMMS_KAFKA_BROKERS") != ""
	brokerOnly := os.Getenv("COMMS_DEV_BROKER_ONLY") == "true"
	if external && brokerOnly {
		return fmt.Errorf("COMMS_DEV_BROKER_ONLY=true runs the embedded broker, but COMMS_KAFKA_BROKERS=%q names another: unset one", os.Getenv("COMMS_KAFKA_BROKERS"))
	}
	if !external {
		broker, err := kfake.NewCluster(kfake.Ports(port),
			kfake.SeedTopics(int32(cfg.KafkaPartitions), queue.AllTopics()...))
		if err != nil {
			return fmt.Errorf("start embedded kafka on port %d (set COMMS_DEV_KAFKA_PORT=0 for any free port): %w", port, err)
		}
		defer broker.Close()
		cfg.KafkaBrokers = broker.ListenAddrs()
		if brokerOnly {
			fmt.Printf("kafka: %s (embedded, in memory; Ctrl-C stops it)\n", cfg.KafkaBrokers[0])
			<-ctx.Done()
			return nil
		}
	}

	if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	stopTracing, err := app.StartTracing(ctx, "comms-dev", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	d, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := db.Migrate(ctx, d.Pool); err != nil {
		return err
	}
	st := store.New(d.Pool)
	if _, err := app.EnsureSandboxDefaults(ctx, st, latency); err != nil {
		return err
	}
	tenant, err := app.EnsureTenant(ctx, st, "demo")
	if err != nil {
		return err
	}
	_, tenantKey, err := st.CreateAPIKey(ctx, domain.KindTenant, tenant.ID, "dev demo key", nil)
	if err != nil {
		return err
	}
	_, adminKey, err := st.CreateAPIKey(ctx, domain.KindAdmin, "", "dev admin key", nil)
	if err != nil {
		return err
	}
	// The embedded broker starts empty: intents published by an earlier run are gone with it.
	if !external {
		if _, err := st.ForgetPublished(ctx); err != nil {
			return err
		}
	}

	apiLn, err := app.Listen(ctx, "COMMS_API_ADDR", cfg.APIAddr)
	if err != nil {
		return err
	}
	stopMetrics, err := app.ServeMetrics(ctx, cfg.MetricsListenAddr("dev"), log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	hookLn, err := app.Listen(ctx, "COMMS_WEBHOOK_ADDR", cfg.WebhookAddr)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
				cancel() // one service failing stops the stack
			}
		}()
	}
	start("api", func() error { return app.API(ctx, cfg, d, apiLn) })
	if os.Getenv("COMMS_DEV_WORKER") != "off" {
		start("worker", func() error { return app.Worker(ctx, cfg, d, app.Registry(cfg, nil)) })
	}
	start("webhook", func() error { return app.Webhook(ctx, cfg, d, hookLn) })

	api := "http://" + apiLn.Addr().String()
	fmt.Printf(`
comms dev stack is running (Ctrl-C stops it)
  api:       %s
  dashboard: %s/ui/ (sign in with the api key below, or the admin key for the ops pages)
  webhook:   http://%s
  metrics:   http://%s/metrics
  kafka:     %s
  tenant:    %s (demo), sandbox system defaults for sms and email (latency %d ms)
api key: %s
admin key: %s

send a message:
  curl -sS -X POST %s/v1/messages -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{"channel":"sms","to":"+14155550123","text":"hello from comms"}'
then poll it:
  curl -sS %s/v1/messages/<id> -H 'Authorization: Bearer %s'

`, api, api, hookLn.Addr(), cfg.MetricsListenAddr("dev"), kafkaNote(cfg.KafkaBrokers, external), tenant.ID, latency, tenantKey, adminKey, api, tenantKey, api, tenantKey)

	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func kafkaNote(brokers []string, external bool) string {
	if external {
		return strings.Join(brokers, ",") + " (COMMS_KAFKA_BROKERS)"
	}
	return brokers[0] + " (embedded, in memory)"
}
