package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/logicspike/comms/internal/db"
	"github.com/logicspike/comms/internal/platform/config"
	"github.com/logicspike/comms/internal/platform/connlimit"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/internal/queue"
)

// Main is the body of every service binary: load and validate the config, open the connections,
// run until SIGINT or SIGTERM, and exit non-zero on failure.
func Main(name string, run func(ctx context.Context, cfg config.Config, d Deps) error) {
	if AskedForVersion(name, os.Args[1:], os.Stdout) {
		return
	}
	TuneGC()
	RecordBuildInfo(name)
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration:\n%v\n", name, err)
		os.Exit(2)
	}
	log := cfg.Logger().With("service", name)
	kafka, err := queue.SettingsFrom(cfg.Kafka)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration:\n%v\n", name, err)
		os.Exit(2)
	}
	kafka.Log = log
	queue.Configure(kafka)
	RouteLibraryLogs(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := queue.Check(ctx, cfg.KafkaBrokers); errors.Is(err, queue.ErrSettings) {
		log.Error("start-up failed", "err", err)
		os.Exit(2)
	} else if err != nil {
		// Intake goes on without the broker, and the sweeper publishes what it recorded later.
		log.Warn("kafka unreachable at start-up", "brokers", cfg.KafkaBrokers, "err", err)
	}
	stopTracing, err := StartTracing(ctx, name, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		os.Exit(2)
	}
	defer stopTracing()
	d, err := Open(ctx, cfg, log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		os.Exit(1)
	}
	defer d.Close()
	if err := db.CheckMigrated(ctx, d.Pool); err != nil {
		// Running against an older schema would fail request by request; say it once, now.
		log.Error("start-up failed", "err", err)
		d.Close()
		os.Exit(2)
	}
	stopMetrics, err := ServeMetrics(ctx, cfg.MetricsListenAddr(name), log)
	if err != nil {
		log.Error("start-up failed", "err", err)
		os.Exit(2)
	}
	defer stopMetrics()
	if err := run(ctx, cfg, d); err != nil {
		log.Error("exited with error", "err", err)
		d.Close()
		os.Exit(1)
	}
}

// StartTracing starts exporting traces when the OTEL_* variables ask for it (see tracing); call
// it before Open, whose connections are instrumented only when tracing is on. The returned
// function flushes what is buffered.
func StartTracing(ctx context.Context, service string, log *slog.Logger) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx, service, log)
	if err != nil {
		return nil, fmt.Errorf("tracing (OTEL_* variables): %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("flushing traces failed", "err", err)
		}
	}, nil
}

// ServeMetrics serves Prometheus' /metrics (and /healthz) on addr, a listener of its own: the public ports (the
// API's, and the webhook receiver's that faces the internet) never serve it, since its labels
// name every tenant and provider config. The returned function closes it.
func ServeMetrics(ctx context.Context, addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := Listen(ctx, "COMMS_METRICS_ADDR", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())
	// Liveness for probes, on the one port every binary has (the worker serves nothing else).
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: MaxHeaderBytes, ErrorLog: httpErrorLog(log)}
	// Scrapers only: a few connections are plenty.
	go func() { _ = connlimit.Wrap(ln, 64, "metrics").Serve(srv) }()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// Listen opens a TCP listener, naming the setting on failure.
func Listen(ctx context.Context, setting, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", setting, addr, err)
	}
	return ln, nil
}
