// Package client is the Go client of the comms HTTP API: a method for every operation of
// docs/openapi.json (the tenant's on Client, the operators' on Admin), with the document's own
// types (types.gen.go, generated from it).
//
//	c := client.New("https://comms.example.com", os.Getenv("COMMS_API_KEY"))
//	acc, err := c.SendMessage(ctx, client.MessageRequest{Channel: "sms", To: "+14155550123", Text: "Your code is 123456"})
//
// What it does for the caller:
//   - Sends (SendMessage, SendBatch) carry an Idempotency-Key, a random one unless the call gives
//     its own (IdempotencyKey), so a send retried after a lost answer is not sent twice.
//   - A 429 or 503 is retried, waiting the answer's Retry-After (or a backoff), up to 3 times
//     (WithRetries), for requests that are safe to repeat: reads, PUTs, DELETEs and sends with
//     an idempotency key. Anything else is returned at once.
//   - A refusal is an *Error: the problem type, each invalid field and the request's id.
//   - List calls answer one Page; All walks every page.
//   - VerifyWebhook checks a delivery to a tenant's endpoint and decodes its CloudEvent.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client calls the comms API as a tenant (with a tenant key, a service key and WithTenant, or a
// recipient token for the inbox calls). It is safe for concurrent use.
type Client struct {
	base    string
	key     string
	tenant  string
	http    *http.Client
	retries int
	wait    func(ctx context.Context, d time.Duration) error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends through hc (its transport, timeouts and connection pool) instead of a
// client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithRetries sets how many times a 429 or 503 is retried (default 3; 0: never).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithTenant names the tenant a service key acts for (the X-Tenant-Id header).
func WithTenant(tenantID string) Option { return func(c *Client) { c.tenant = tenantID } }

// New returns a client of the API at baseURL ("https://comms.example.com") authenticating with
// key.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), key: key, http: &http.Client{Timeout: 30 * time.Second}, retries: 3, wait: sleep}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithKey returns a client of the same API and connections authenticating with key: another
// tenant's, or a recipient token for the inbox calls.
func (c *Client) WithKey(key string) *Client {
	cp := *c
	cp.key = key
	return &cp
}

// CallOption adjusts one call.
type CallOption func(*call)

type call struct {
	idempotencyKey string
	header         http.Header
}

// IdempotencyKey makes a send's idempotency key key instead of a random one: the same key and
// request within 24 hours answer with the first acceptance instead of sending again.
func IdempotencyKey(key string) CallOption { return func(c *call) { c.idempotencyKey = key } }

// Header adds a request header.
func Header(name, value string) CallOption {
	return func(c *call) {
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Set(name, value)
	}
}

// Error is the API's refusal: its RFC 9457 problem, the request's id and, on 429 and 503, how
// long the server asked to wait.
type Error struct {
	Status   int          `json:"status"`
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Detail   string       `json:"detail"`
	Instance string       `json:"instance"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Code is a failed Save & Test's normalized provider error (auth_failed, invalid_recipient…).
	Code string `json:"code,omitempty"`
	// RequestID is the answer's X-Request-Id: quote it when asking about the request.
	RequestID  string        `json:"-"`
	RetryAfter time.Duration `json:"-"`
}

// FieldError names one invalid field of a request and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("comms API: %d %s", e.Status, e.Title)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	for _, f := range e.Errors {
		s += "; " + f.Field + ": " + f.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// Slug is the last part of the problem type: "validation", "rate-limited" (docs/errors.md).
func (e *Error) Slug() string { return e.Type[strings.LastIndexAny(e.Type, "#/")+1:] }

// Field returns what is wrong with the named field, or "".
func (e *Error) Field(name string) string {
	for _, f := range e.Errors {
		if f.Field == name {
			return f.Message
		}
	}
	return ""
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do calls method on path (with its query), sending in as JSON (nil: no body) and decoding a 2xx
// answer into out: a *[]byte takes the body as it is, nil discards it. It is what every method
// of the package calls, for an operation the package does not have yet.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, opts ...CallOption) error {
	var o call
	for _, opt := range opts {
		opt(&o)
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = b
	}
	// Repeating is safe when the request means the same however often it arrives.
	safe := method == http.MethodGet || method == http.MethodHead || method == http.MethodPut || method == http.MethodDelete || o.idempotencyKey != ""
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, body, out, o)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable || !safe || attempt >= c.retries {
			return err
		}
		wait := e.RetryAfter
		if wait <= 0 {
			wait = time.Duration(float64(250*time.Millisecond) * float64(int(1)<<attempt) * (0.5 + rand.Float64()))
		}
		if werr := c.wait(ctx, min(wait, time.Minute)); werr != nil {
			return err
		}
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, method, path string, body []byte, out any, o call) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if c.tenant != "" {
		req.Header.Set("X-Tenant-Id", c.tenant)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", o.idempotencyKey)
	}
	for name, vs := range o.header {
		req.Header[name] = vs
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), RequestID: resp.Header.Get("X-Request-Id")}
		if json.Unmarshal(raw, e) != nil || e.Status == 0 {
			e.Status, e.Detail = resp.StatusCode, strings.TrimSpace(string(raw))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	switch dst := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*dst = raw
		return nil
	}
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// withIdempotencyKey is opts with a random idempotency key first, which a caller's own replaces.
func withIdempotencyKey(opts []CallOption) []CallOption {
	b := make([]byte, 16)
	_, _ = crand.Read(b)
	return append([]CallOption{IdempotencyKey("go-" + hex.EncodeToString(b))}, opts...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
