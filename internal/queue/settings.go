package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/logicspike/comms/internal/platform/config"
)

// Settings are how this process reaches the Kafka cluster beyond the brokers' addresses: SASL,
// TLS and a prefix for every topic name (so that two environments can share a cluster). The
// zero value is plain TCP and the bare names (make dev, the tests).
type Settings struct {
	SASL        sasl.Mechanism // nil: no SASL
	TLS         *tls.Config    // nil: plain TCP
	TopicPrefix string         // e.g. "staging.": staging.comms.send
	// Log receives kafka-go's error lines (a broker unreachable, a rebalance failing) as warnings
	// with component=kafka; nil drops them.
	Log *slog.Logger
}

// SettingsFrom builds the connection settings from the configuration: the SASL mechanism with
// its credentials, and the TLS configuration with its CA and client certificate read from their
// files. Errors name the setting.
func SettingsFrom(k config.Kafka) (Settings, error) {
	s := Settings{TopicPrefix: k.TopicPrefix}
	switch k.SASLMechanism {
	case "PLAIN":
		s.SASL = plain.Mechanism{Username: k.SASLUsername, Password: k.SASLPassword}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		algo := scram.SHA256
		if k.SASLMechanism == "SCRAM-SHA-512" {
			algo = scram.SHA512
		}
		mech, err := scram.Mechanism(algo, k.SASLUsername, k.SASLPassword)
		if err != nil {
			return Settings{}, fmt.Errorf("COMMS_KAFKA_SASL_MECHANISM=%s: %w", k.SASLMechanism, err)
		}
		s.SASL = mech
	}
	if !k.TLS {
		return s, nil
	}
	s.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if k.TLSCAFile != "" {
		pem, err := os.ReadFile(k.TLSCAFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			return Settings{}, fmt.Errorf("COMMS_KAFKA_TLS_CA_FILE=%s: no readable PEM certificate (%v)", k.TLSCAFile, err)
		}
		s.TLS.RootCAs = pool
	}
	if k.TLSCertFile != "" {
		pair, err := tls.LoadX509KeyPair(k.TLSCertFile, k.TLSKeyFile)
		if err != nil {
			return Settings{}, fmt.Errorf("COMMS_KAFKA_TLS_CERT_FILE, _KEY_FILE: %w", err)
		}
		s.TLS.Certificates = []tls.Certificate{pair}
	}
	return s, nil
}

// The topic names without a prefix.
const (
	baseSend   = "comms.send"
	baseDLQ    = "comms.send.dlq"
	baseEvents = "comms.events"
)

var (
	settingsMu sync.RWMutex
	settings   Settings
	transport  kafka.RoundTripper = kafka.DefaultTransport
)

// Configure sets how every producer, consumer and admin call of this process reaches the
// cluster. Each binary calls it once at start-up, from its configuration, before anything
// connects: what was built earlier keeps the settings it was built with.
func Configure(s Settings) {
	settingsMu.Lock()
	defer settingsMu.Unlock()
	settings = s
	transport = kafka.DefaultTransport
	if s.SASL != nil || s.TLS != nil {
		transport = &kafka.Transport{SASL: s.SASL, TLS: s.TLS, DialTimeout: 10 * time.Second}
	}
	TopicSend, TopicDLQ, TopicEvents = s.TopicPrefix+baseSend, s.TopicPrefix+baseDLQ, s.TopicPrefix+baseEvents
}

func current() (Settings, kafka.RoundTripper) {
	settingsMu.RLock()
	defer settingsMu.RUnlock()
	return settings, transport
}

// errorLogger routes kafka-go's error lines to the settings' logger.
func errorLogger() kafka.Logger {
	s, _ := current()
	if s.Log == nil {
		return nil
	}
	log := s.Log.With("component", "kafka")
	return kafka.LoggerFunc(func(format string, args ...any) {
		log.Warn(fmt.Sprintf(format, args...))
	})
}

// dialer is a connection dialer with the process's SASL and TLS.
func dialer() *kafka.Dialer {
	s, _ := current()
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, SASLMechanism: s.SASL, TLS: s.TLS}
}

// client is an admin client of brokers with the process's SASL and TLS.
func client(brokers []string) *kafka.Client {
	_, t := current()
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second, Transport: t}
}

// ErrSettings means the cluster answered but refused this process's settings: its SASL
// credentials, or a certificate that the configured CAs do not trust. Retrying cannot help.
var ErrSettings = errors.New("kafka refused the connection settings")

// Check connects to the cluster and asks for its brokers, so that credentials it refuses or a
// certificate nobody trusts stop a binary at start (wrapping ErrSettings) rather than in a
// retry loop. A cluster that cannot be reached at all is another error: the API accepts
// messages while the broker is down, and the sweeper publishes them later.
func Check(ctx context.Context, brokers []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	for _, b := range brokers {
		var conn *kafka.Conn
		if conn, err = dialer().DialContext(ctx, "tcp", b); err == nil {
			_, err = conn.Brokers()
			_ = conn.Close()
		}
		if err == nil {
			return nil
		}
		if serr := settingsError(err); serr != nil {
			return serr
		}
	}
	return fmt.Errorf("reach kafka at %v: %w", brokers, err)
}

// settingsError is err as a refusal of this process's settings (wrapping ErrSettings), or nil
// when it is not one.
func settingsError(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var tlsRecord tls.RecordHeaderError
	switch {
	case errors.Is(err, kafka.SASLAuthenticationFailed), errors.Is(err, kafka.UnsupportedSASLMechanism),
		errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w: SASL: %v (check COMMS_KAFKA_SASL_MECHANISM, COMMS_KAFKA_SASL_USERNAME and COMMS_KAFKA_SASL_PASSWORD)", ErrSettings, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return fmt.Errorf("%w: TLS: %v (check COMMS_KAFKA_TLS_CA_FILE)", ErrSettings, err)
	case errors.As(err, &tlsRecord):
		return fmt.Errorf("%w: TLS: the broker does not speak TLS: %v (check COMMS_KAFKA_TLS)", ErrSettings, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Reached, then hung up on: what a broker does to a client without the TLS or SASL it
		// requires, or with credentials it refuses.
		return fmt.Errorf("%w: the broker closed the connection: it expects TLS (COMMS_KAFKA_TLS) or SASL (COMMS_KAFKA_SASL_*) other than configured: %v", ErrSettings, err)
	}
	return nil
}

// CloseIdleConnections closes the connections the shared transport keeps to the brokers for the
// process's producers and admin calls (they are kept between calls, like an HTTP client's). A
// process calls it once everything that produces has stopped.
func CloseIdleConnections() {
	_, t := current()
	if t, ok := t.(*kafka.Transport); ok {
		t.CloseIdleConnections()
	}
}
