// Package config loads the service's settings from the environment, once, in main, and validates
// them at start-up so a bad setting stops the process with a message naming it.
package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tracing"
	"github.com/logicspike/comms/pkg/provider"
)

// Config is every setting. Each binary uses the parts it needs; docs/operations.md lists them.
type Config struct {
	DatabaseURL string // COMMS_DATABASE_URL
	DBMaxConns  int32  // COMMS_DB_MAX_CONNS
	RedisAddr   string // COMMS_REDIS_ADDR (or the host of COMMS_REDIS_URL)
	// Redis is how to reach Redis: COMMS_REDIS_URL (redis:// or rediss://, with user, password
	// and database) when set, else COMMS_REDIS_ADDR; COMMS_REDIS_TLS_CA_FILE adds a private CA.
	Redis        *redis.Options
	RedisPrefix  string   // COMMS_REDIS_PREFIX
	KafkaBrokers []string // COMMS_KAFKA_BROKERS, comma-separated
	// Kafka is SASL, TLS and the topic prefix: COMMS_KAFKA_SASL_*, COMMS_KAFKA_TLS*,
	// COMMS_KAFKA_TOPIC_PREFIX (see kafkaSettings).
	Kafka           Kafka
	KafkaPartitions int    // COMMS_KAFKA_PARTITIONS: used when creating topics
	KafkaReplicas   int    // COMMS_KAFKA_REPLICATION
	APIAddr         string // COMMS_API_ADDR
	WebhookAddr     string // COMMS_WEBHOOK_ADDR
	// MetricsAddr is COMMS_METRICS_ADDR: where the binary serves /metrics, on a listener of its
	// own apart from the public ports; "" for the binary's default (see MetricsListenAddr).
	MetricsAddr       string
	WorkerMetricsAddr string        // COMMS_WORKER_METRICS_ADDR: the worker's, kept for older deployments
	WorkerGroup       string        // COMMS_WORKER_GROUP
	WorkerInFlight    int           // COMMS_WORKER_IN_FLIGHT
	AttemptTimeout    time.Duration // COMMS_ATTEMPT_TIMEOUT
	ShutdownTimeout   time.Duration // COMMS_SHUTDOWN_TIMEOUT
	// DrainDelay (COMMS_DRAIN_DELAY) is how long api and webhook keep serving after SIGTERM with
	// /readyz failing, so load balancers take them out before they stop accepting.
	DrainDelay      time.Duration
	AuthCacheTTL    time.Duration // COMMS_AUTH_CACHE_TTL
	APIMaxConns     int           // COMMS_API_MAX_CONNS: connections the API holds open at once
	WebhookMaxConns int           // COMMS_WEBHOOK_MAX_CONNS: the same for the callback receiver
	RouteCacheTTL   time.Duration // COMMS_ROUTE_CACHE_TTL
	SweepInterval   time.Duration // COMMS_SWEEP_INTERVAL
	SweepGrace      time.Duration // COMMS_SWEEP_GRACE
	SweepLostAfter  time.Duration // COMMS_SWEEP_LOST_AFTER
	// EraserBatch (COMMS_ERASER_BATCH) is how many messages the eraser erases a transaction, and
	// EraserBusy (COMMS_ERASER_BUSY, above 0 and at most 1) its share of time in transactions: it
	// rests (1-busy)/busy times as long as each took, trading an erasure's time for intake's.
	EraserBatch int
	EraserBusy  float64
	// Ring seals provider credentials: COMMS_ENCRYPTION_KEYS=v2:<base64 32 bytes>,v1:<...>, newest
	// first. Required: without it no stored config can be opened.
	Ring *secrets.Ring
	// Adapter endpoints and policy (provider.Env): COMMS_TWILIO_BASE_URL, COMMS_SES_ENDPOINT,
	// COMMS_RESEND_BASE_URL, COMMS_FCM_BASE_URL, COMMS_FCM_TOKEN_URL, COMMS_APNS_BASE_URL, COMMS_PUBLIC_WEBHOOK_URL,
	// COMMS_ALLOW_PRIVATE_NETWORKS.
	TwilioBaseURL       string
	SESEndpoint         string
	STSEndpoint         string
	ResendBaseURL       string
	FCMBaseURL          string
	FCMTokenURL         string
	APNsBaseURL         string
	PublicWebhookURL    string
	AllowPrivateNetwork bool
	ProviderTestTimeout time.Duration // COMMS_PROVIDER_TEST_TIMEOUT: bound of a Save & Test send
	// SNSHostPattern (COMMS_SNS_HOST_PATTERN) is the regular expression an SNS SigningCertURL's
	// and SubscribeURL's host must match; the default is AWS's sns.<region>.amazonaws.com.
	SNSHostPattern string
	LogLevel       slog.Level // COMMS_LOG_LEVEL: debug, info, warn, error
	LogFormat      string     // COMMS_LOG_FORMAT: json or text
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
		if v == "" && def == "" {
			return "" // optional, unset
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: must be host:port", name, v))
		}
		return v
	}

	c := Config{
		DatabaseURL:       str("COMMS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/comms?sslmode=disable"),
		DBMaxConns:        int32(num("COMMS_DB_MAX_CONNS", 16, 1)),
		RedisAddr:         addr("COMMS_REDIS_ADDR", "127.0.0.1:6379"),
		RedisPrefix:       str("COMMS_REDIS_PREFIX", "comms:"),
		KafkaPartitions:   num("COMMS_KAFKA_PARTITIONS", 12, 1),
		KafkaReplicas:     num("COMMS_KAFKA_REPLICATION", 1, 1),
		APIAddr:           addr("COMMS_API_ADDR", "127.0.0.1:8080"),
		WebhookAddr:       addr("COMMS_WEBHOOK_ADDR", "127.0.0.1:8081"),
		MetricsAddr:       addr("COMMS_METRICS_ADDR", ""),
		WorkerMetricsAddr: addr("COMMS_WORKER_METRICS_ADDR", ""),
		WorkerGroup:       str("COMMS_WORKER_GROUP", "comms-worker"),
		WorkerInFlight:    num("COMMS_WORKER_IN_FLIGHT", 1024, 1),
		AttemptTimeout:    dur("COMMS_ATTEMPT_TIMEOUT", 30*time.Second),
		ShutdownTimeout:   dur("COMMS_SHUTDOWN_TIMEOUT", 25*time.Second),
		DrainDelay:        dur("COMMS_DRAIN_DELAY", 5*time.Second),
		AuthCacheTTL:      dur("COMMS_AUTH_CACHE_TTL", 10*time.Second),
		APIMaxConns:       num("COMMS_API_MAX_CONNS", 4096, 1),
		WebhookMaxConns:   num("COMMS_WEBHOOK_MAX_CONNS", 4096, 1),
		RouteCacheTTL:     dur("COMMS_ROUTE_CACHE_TTL", 5*time.Second),
		SweepInterval:     dur("COMMS_SWEEP_INTERVAL", time.Second),
		SweepGrace:        dur("COMMS_SWEEP_GRACE", 10*time.Second),
		SweepLostAfter:    dur("COMMS_SWEEP_LOST_AFTER", 10*time.Minute),
		EraserBatch:       num("COMMS_ERASER_BATCH", 1000, 1),
		EraserBusy:        0.5,
		LogFormat:         str("COMMS_LOG_FORMAT", "json"),
	}
	kset, err := kafkaSettings(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c.Kafka = kset
	ropts, err := redisOptions(c.RedisAddr, getenv("COMMS_REDIS_URL"), getenv("COMMS_REDIS_TLS_CA_FILE"))
	if err != nil {
		errs = append(errs, err)
	}
	c.Redis = ropts
	if ropts != nil {
		c.RedisAddr = ropts.Addr
	}
	ring, err := secrets.ParseRing(getenv("COMMS_ENCRYPTION_KEYS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("COMMS_ENCRYPTION_KEYS: %w", err))
	}
	c.Ring = ring
	for _, name := range []string{"COMMS_TWILIO_BASE_URL", "COMMS_SES_ENDPOINT", "COMMS_STS_ENDPOINT", "COMMS_RESEND_BASE_URL", "COMMS_FCM_BASE_URL", "COMMS_FCM_TOKEN_URL", "COMMS_APNS_BASE_URL", "COMMS_PUBLIC_WEBHOOK_URL"} {
		v := strings.TrimRight(getenv(name), "/")
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: must be an absolute http(s) URL", name, v))
		}
		switch name {
		case "COMMS_TWILIO_BASE_URL":
			c.TwilioBaseURL = v
		case "COMMS_SES_ENDPOINT":
			c.SESEndpoint = v
		case "COMMS_STS_ENDPOINT":
			c.STSEndpoint = v
		case "COMMS_RESEND_BASE_URL":
			c.ResendBaseURL = v
		case "COMMS_FCM_BASE_URL":
			c.FCMBaseURL = v
		case "COMMS_FCM_TOKEN_URL":
			c.FCMTokenURL = v
		case "COMMS_APNS_BASE_URL":
			c.APNsBaseURL = v
		case "COMMS_PUBLIC_WEBHOOK_URL":
			c.PublicWebhookURL = v
		}
	}
	switch v := getenv("COMMS_ALLOW_PRIVATE_NETWORKS"); v {
	case "", "false", "0":
	case "true", "1":
		c.AllowPrivateNetwork = true
	default:
		errs = append(errs, fmt.Errorf("COMMS_ALLOW_PRIVATE_NETWORKS=%q: must be true or false", v))
	}
	c.ProviderTestTimeout = dur("COMMS_PROVIDER_TEST_TIMEOUT", 20*time.Second)
	c.SNSHostPattern = str("COMMS_SNS_HOST_PATTERN", `^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)
	if _, err := regexp.Compile(c.SNSHostPattern); err != nil {
		errs = append(errs, fmt.Errorf("COMMS_SNS_HOST_PATTERN: %w", err))
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
	if v := getenv("COMMS_ERASER_BUSY"); v != "" {
		busy, err := strconv.ParseFloat(v, 64)
		if err != nil || !(busy > 0 && busy <= 1) {
			errs = append(errs, fmt.Errorf("COMMS_ERASER_BUSY=%q: must be a share of time above 0 and at most 1, such as 0.5", v))
		}
		c.EraserBusy = busy
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, errors.New("COMMS_ATTEMPT_TIMEOUT: must be positive"))
	}
	return c, errors.Join(errs...)
}

// FromEnv is Load(os.Getenv).
func FromEnv() (Config, error) { return Load(os.Getenv) }

// Kafka is how to reach a secured cluster, as the environment says; queue.SettingsFrom builds
// the connection settings from it.
type Kafka struct {
	SASLMechanism, SASLUsername, SASLPassword string // COMMS_KAFKA_SASL_MECHANISM, _USERNAME, _PASSWORD
	TLS                                       bool   // COMMS_KAFKA_TLS
	TLSCAFile, TLSCertFile, TLSKeyFile        string // COMMS_KAFKA_TLS_CA_FILE, _CERT_FILE, _KEY_FILE
	TopicPrefix                               string // COMMS_KAFKA_TOPIC_PREFIX
}

// kafkaSettings reads and checks COMMS_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512) with COMMS_KAFKA_SASL_USERNAME and COMMS_KAFKA_SASL_PASSWORD;
// COMMS_KAFKA_TLS=true, with COMMS_KAFKA_TLS_CA_FILE for a private CA and
// COMMS_KAFKA_TLS_CERT_FILE and COMMS_KAFKA_TLS_KEY_FILE for a client certificate; and
// COMMS_KAFKA_TOPIC_PREFIX.
func kafkaSettings(getenv func(string) string) (Kafka, error) {
	k := Kafka{SASLMechanism: getenv("COMMS_KAFKA_SASL_MECHANISM"), SASLUsername: getenv("COMMS_KAFKA_SASL_USERNAME"),
		SASLPassword: getenv("COMMS_KAFKA_SASL_PASSWORD"), TLSCAFile: getenv("COMMS_KAFKA_TLS_CA_FILE"),
		TLSCertFile: getenv("COMMS_KAFKA_TLS_CERT_FILE"), TLSKeyFile: getenv("COMMS_KAFKA_TLS_KEY_FILE"),
		TopicPrefix: getenv("COMMS_KAFKA_TOPIC_PREFIX")}
	var errs []error
	if p := k.TopicPrefix; p != "" && !topicPrefix.MatchString(p) {
		errs = append(errs, fmt.Errorf("COMMS_KAFKA_TOPIC_PREFIX=%q: letters, digits, '.', '_' and '-' only, at most 100", p))
	}
	switch m := k.SASLMechanism; m {
	case "":
		if k.SASLUsername != "" || k.SASLPassword != "" {
			errs = append(errs, errors.New("COMMS_KAFKA_SASL_USERNAME and _PASSWORD are set but COMMS_KAFKA_SASL_MECHANISM is not (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"))
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASLUsername == "" || k.SASLPassword == "" {
			errs = append(errs, fmt.Errorf("COMMS_KAFKA_SASL_MECHANISM=%s needs COMMS_KAFKA_SASL_USERNAME and COMMS_KAFKA_SASL_PASSWORD", m))
		}
	default:
		errs = append(errs, fmt.Errorf("COMMS_KAFKA_SASL_MECHANISM=%q: must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", m))
	}
	switch v := getenv("COMMS_KAFKA_TLS"); v {
	case "", "false":
		if k.TLSCAFile != "" || k.TLSCertFile != "" || k.TLSKeyFile != "" {
			errs = append(errs, errors.New("COMMS_KAFKA_TLS_* files are set but COMMS_KAFKA_TLS is not true"))
		}
	case "true":
		k.TLS = true
		if (k.TLSCertFile == "") != (k.TLSKeyFile == "") {
			errs = append(errs, errors.New("COMMS_KAFKA_TLS_CERT_FILE and COMMS_KAFKA_TLS_KEY_FILE go together"))
		}
	default:
		errs = append(errs, fmt.Errorf("COMMS_KAFKA_TLS=%q: must be true or false", v))
	}
	return k, errors.Join(errs...)
}

var topicPrefix = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// redisOptions is how to reach Redis: rawURL (redis://[user:password@]host:port/db, or
// rediss:// for TLS) when set, else addr; caFile (PEM) is the CA that signs the server's
// certificate, for a private CA.
func redisOptions(addr, rawURL, caFile string) (*redis.Options, error) {
	opts := &redis.Options{Addr: addr}
	if rawURL != "" {
		var err error
		if opts, err = redis.ParseURL(rawURL); err != nil {
			// The URL may hold a password: name the setting, not its value.
			return nil, fmt.Errorf("COMMS_REDIS_URL: must be redis://[user:password@]host:port[/db] or rediss://…: %s", redactURLError(err))
		}
	}
	if caFile != "" {
		if opts.TLSConfig == nil {
			return nil, fmt.Errorf("COMMS_REDIS_TLS_CA_FILE is set but Redis is not reached over TLS: use a rediss:// COMMS_REDIS_URL")
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("COMMS_REDIS_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("COMMS_REDIS_TLS_CA_FILE=%s: no PEM certificate in it", caFile)
		}
		opts.TLSConfig.RootCAs = pool
	}
	return opts, nil
}

// redactURLError is a URL parse error without the URL, which may hold a password.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// MetricsListenAddr is where binary serves /metrics: COMMS_METRICS_ADDR, else its default on
// loopback (api 9090, worker 9091, webhook 9092, so that one host can run all three; the worker
// also honours COMMS_WORKER_METRICS_ADDR). Prometheus in the cluster scrapes it once it is set
// to the pod's address; the public ports never serve it.
func (c Config) MetricsListenAddr(binary string) string {
	if c.MetricsAddr != "" {
		return c.MetricsAddr
	}
	switch binary {
	case "worker":
		if c.WorkerMetricsAddr != "" {
			return c.WorkerMetricsAddr
		}
		return "127.0.0.1:9091"
	case "webhook":
		return "127.0.0.1:9092"
	}
	return "127.0.0.1:9090"
}

// ProviderEnv is what provider adapters take from the process. Tenant-supplied hosts are dialled
// through netguard unless private networks are allowed (dev and tests).
func (c Config) ProviderEnv() provider.Env {
	return provider.Env{
		TwilioBaseURL: c.TwilioBaseURL, SESEndpoint: c.SESEndpoint, STSEndpoint: c.STSEndpoint, ResendBaseURL: c.ResendBaseURL,
		FCMBaseURL: c.FCMBaseURL, FCMTokenURL: c.FCMTokenURL, APNsBaseURL: c.APNsBaseURL,
		PublicWebhookURL: c.PublicWebhookURL, AllowInsecure: c.AllowPrivateNetwork, SNSHostPattern: c.SNSHostPattern,
		Dial: netguard.DialFunc(10*time.Second, c.AllowPrivateNetwork),
	}
}

// Logger returns the process logger the config asks for.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(tracing.LogHandler(slog.NewTextHandler(os.Stderr, opts)))
	}
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(os.Stderr, opts)))
}
