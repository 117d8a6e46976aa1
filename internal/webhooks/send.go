package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/pkg/provider"
)

// ExcerptBytes bounds the part of an endpoint's answer kept with each attempt.
const ExcerptBytes = 1024

// sender makes delivery attempts: one signed POST, success being any 2xx within the timeout.
type sender struct {
	client  *http.Client
	timeout time.Duration
}

// newSender dials through dial (netguard's in production) and never follows redirects: a 30x
// to an internal address would slip past the dial guard, and a receiver that moved says so.
func newSender(dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) *sender {
	t := provider.NewTransport(dial)
	t.Proxy = nil
	// Many tenants' endpoints may share a host (an automation platform's, a receiver proxy's):
	// keep enough idle connections that a busy host's deliveries reuse them rather than dial.
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 4096, 512
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &sender{
		timeout: timeout,
		client: &http.Client{
			Transport:     provider.Instrumented(t),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// attempt POSTs body to url signed with keys, and reports what happened, as of `at` on the
// Deliverer's clock. The signature's timestamp is the wall clock's: receivers check it against
// theirs.
func (s *sender) attempt(ctx context.Context, url, eventID string, body []byte, keys [][]byte, at time.Time) (a domain.WebhookAttempt, ok bool) {
	a.At = at
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Error = "invalid URL: " + err.Error()
		return a, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "comms-webhooks/1")
	req.Header.Set("webhook-id", eventID)
	ts := time.Now()
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", signature(keys, eventID, ts, body))
	start := time.Now()
	resp, err := s.client.Do(req)
	elapsed := time.Since(start)
	a.LatencyMS = int(elapsed.Milliseconds())
	if err != nil {
		a.Error = describe(err, s.timeout)
		metrics.WebhookAttempts.WithLabelValues("error").Inc()
		return a, false
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, ExcerptBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	metrics.WebhookLatency.Observe(time.Since(start).Seconds())
	a.StatusCode = resp.StatusCode
	a.Response = validPrefix(excerpt)
	ok = resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case ok:
		metrics.WebhookAttempts.WithLabelValues("succeeded").Inc()
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.Error = "redirects are not followed; point the endpoint at " + resp.Header.Get("Location")
		metrics.WebhookAttempts.WithLabelValues("failed").Inc()
	default:
		metrics.WebhookAttempts.WithLabelValues("failed").Inc()
	}
	return a, ok
}

// describe says in a tenant's words why no answer came.
func describe(err error, timeout time.Duration) string {
	var refused *netguard.Refused
	var dns *net.DNSError
	switch {
	case errors.As(err, &refused):
		return "refused: " + refused.Error()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout) || isTimeout(err):
		return "no answer within " + timeout.String()
	case errors.As(err, &dns):
		return "DNS lookup failed: " + provider.ErrorText(dns)
	}
	return "connection failed: " + provider.ErrorText(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// validPrefix is b as text, with invalid bytes (a character cut at the limit) replaced.
func validPrefix(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }
