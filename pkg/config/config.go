// Package config loads the service's settings from the environment, once, in main, and validates
// them at start-up so a bad setting stops the process with a message naming it.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting. Each binary uses the parts it needs; README lists them.
type Config struct {
	DatabaseURL     string        // COMMS_DATABASE_URL
	DBMaxConns      int32         // COMMS_DB_MAX_CONNS
	RedisAddr       string        // COMMS_REDIS_ADDR
	RedisPrefix     string        // COMMS_REDIS_PREFIX
	KafkaBrokers    []string      // COMMS_KAFKA_BROKERS, comma-separated
	KafkaPartitions int           // COMMS_KAFKA_PARTITIONS: used when creating topics
	KafkaReplicas   int           // COMMS_KAFKA_REPLICATION
	APIAddr         string        // COMMS_API_ADDR
	WebhookAddr     string        // COMMS_WEBHOOK_ADDR
	WorkerGroup     string        // COMMS_WORKER_GROUP
	WorkerInFlight  int           // COMMS_WORKER_IN_FLIGHT
	AttemptTimeout  time.Duration // COMMS_ATTEMPT_TIMEOUT
	ShutdownTimeout time.Duration // COMMS_SHUTDOWN_TIMEOUT
	AuthCacheTTL    time.Duration // COMMS_AUTH_CACHE_TTL
	RouteCacheTTL   time.Duration // COMMS_ROUTE_CACHE_TTL
	SweepInterval   time.Duration // COMMS_SWEEP_INTERVAL
	SweepGrace      time.Duration // COMMS_SWEEP_GRACE
	LogLevel        slog.Level    // COMMS_LOG_LEVEL: debug, info, warn, error
	LogFormat       string        // COMMS_LOG_FORMAT: json or text
}

// Load reads the environment through getenv (os.Getenv in main) and validates the result.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	num := func(name string, def, min int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			errs = append(errs, fmt.Errorf("%s=%q: must be an integer of at least %d", name, v, min))
		}
		return n
	}
	dur := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: must be a duration such as 500ms or 10s", name, v))
		}
		return d
	}
	addr := func(name, def string) string {
		v := str(name, def)
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: must be host:port", name, v))
		}
		return v
	}

	c := Config{
		DatabaseURL:     str("COMMS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/comms?sslmode=disable"),
		DBMaxConns:      int32(num("COMMS_DB_MAX_CONNS", 16, 1)),
		RedisAddr:       addr("COMMS_REDIS_ADDR", "127.0.0.1:6379"),
		RedisPrefix:     str("COMMS_REDIS_PREFIX", "comms:"),
		KafkaPartitions: num("COMMS_KAFKA_PARTITIONS", 12, 1),
		KafkaReplicas:   num("COMMS_KAFKA_REPLICATION", 1, 1),
		APIAddr:         addr("COMMS_API_ADDR", "127.0.0.1:8080"),
		WebhookAddr:     addr("COMMS_WEBHOOK_ADDR", "127.0.0.1:8081"),
		WorkerGroup:     str("COMMS_WORKER_GROUP", "comms-worker"),
		WorkerInFlight:  num("COMMS_WORKER_IN_FLIGHT", 1024, 1),
		AttemptTimeout:  dur("COMMS_ATTEMPT_TIMEOUT", 30*time.Second),
		ShutdownTimeout: dur("COMMS_SHUTDOWN_TIMEOUT", 25*time.Second),
		AuthCacheTTL:    dur("COMMS_AUTH_CACHE_TTL", 10*time.Second),
		RouteCacheTTL:   dur("COMMS_ROUTE_CACHE_TTL", 5*time.Second),
		SweepInterval:   dur("COMMS_SWEEP_INTERVAL", time.Second),
		SweepGrace:      dur("COMMS_SWEEP_GRACE", 10*time.Second),
		LogFormat:       str("COMMS_LOG_FORMAT", "json"),
	}
	for _, b := range strings.Split(str("COMMS_KAFKA_BROKERS", "127.0.0.1:9092"), ",") {
		b = strings.TrimSpace(b)
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("COMMS_KAFKA_BROKERS: %q must be host:port", b))
		}
		c.KafkaBrokers = append(c.KafkaBrokers, b)
	}
	if err := c.LogLevel.UnmarshalText([]byte(str("COMMS_LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("COMMS_LOG_LEVEL: must be debug, info, warn or error"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("COMMS_LOG_FORMAT=%q: must be json or text", c.LogFormat))
	}
	if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("COMMS_DATABASE_URL: must be a postgres:// URL"))
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, errors.New("COMMS_ATTEMPT_TIMEOUT: must be positive"))
	}
	return c, errors.Join(errs...)
}

// FromEnv is Load(os.Getenv).
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Logger returns the process logger the config asks for.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
