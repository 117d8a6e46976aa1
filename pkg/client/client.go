// Package client is a Go client for the comms HTTP API: sending and reading messages as a
// tenant, and the admin calls that set tenants up. Failures come back as *Error, the API's
// problem+json answer, so a caller can branch on the status and read each invalid field.
//
//	c := client.New("http://127.0.0.1:8080", os.Getenv("COMMS_API_KEY"))
//	acc, err := c.Send(ctx, message.Request{Channel: message.SMS, To: "+14155550123", Text: "Your code is 123456"}, "order-42")
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Client calls one comms API with one API key. It is safe for concurrent use.
type Client struct {
	base string
	key  string
	http *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends through hc (its transport, timeouts and connection pool) instead of a
// client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a client of the API at baseURL ("http://127.0.0.1:8080") authenticating with
// apiKey (a tenant, service or admin key).
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), key: apiKey, http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithKey returns a client of the same API and connections authenticating with apiKey.
func (c *Client) WithKey(apiKey string) *Client {
	cp := *c
	cp.key = apiKey
	return &cp
}

// Error is the API's problem+json answer to a failed call (RFC 9457).
type Error struct {
	Status   int                  `json:"status"`
	Type     string               `json:"type"`
	Title    string               `json:"title"`
	Detail   string               `json:"detail"`
	Instance string               `json:"instance"`
	Errors   []message.FieldError `json:"errors,omitempty"`
	// RetryAfter is the server's Retry-After, when it sent one (429, 503).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("comms API: %d %s", e.Status, e.Title)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	for _, f := range e.Errors {
		s += "; " + f.Field + ": " + f.Message
	}
	return s
}

// Slug is the last part of the problem type ("validation-error", "rate-limited").
func (e *Error) Slug() string { return e.Type[strings.LastIndexAny(e.Type, "#/")+1:] }

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do calls method on path (with its query) sending in as JSON (nil: no body) and decoding a 2xx
// answer into out (nil: discarded). headers are added to the request.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, headers ...string) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		if json.Unmarshal(raw, e) != nil || e.Status == 0 {
			e.Status, e.Detail = resp.StatusCode, strings.TrimSpace(string(raw))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// Accepted is the answer to a send: the message's id and status at acceptance.
type Accepted struct {
	ID        string         `json:"id"`
	Status    message.Status `json:"status"`
	CreatedAt time.Time      `json:"created_at"`
}

// Send accepts one message (POST /v1/messages). A non-empty idempotencyKey makes a repeat of
// the same request answer with the first one's acceptance instead of sending twice.
func (c *Client) Send(ctx context.Context, r message.Request, idempotencyKey string) (Accepted, error) {
	var m Accepted
	var h []string
	if idempotencyKey != "" {
		h = []string{"Idempotency-Key", idempotencyKey}
	}
	err := c.Do(ctx, http.MethodPost, "/v1/messages", r, &m, h...)
	return m, err
}

// Message returns one message with its timeline (GET /v1/messages/{id}).
func (c *Client) Message(ctx context.Context, id string) (message.Message, error) {
	var m message.Message
	err := c.Do(ctx, http.MethodGet, "/v1/messages/"+url.PathEscape(id), nil, &m)
	return m, err
}

// MessagePage is one page of GET /v1/messages.
type MessagePage struct {
	Data       []message.Message `json:"data"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// Messages lists messages, newest first; query filters and pages (status, to, cursor, limit).
func (c *Client) Messages(ctx context.Context, query url.Values) (MessagePage, error) {
	var p MessagePage
	path := "/v1/messages"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	err := c.Do(ctx, http.MethodGet, path, nil, &p)
	return p, err
}

// Tenant is a tenant as the admin API shows it.
type Tenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CreateTenant creates a tenant (POST /admin/tenants; admin key).
func (c *Client) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, http.MethodPost, "/admin/tenants", map[string]any{"name": name}, &t)
	return t, err
}

// APIKey is a created key; Secret is shown only in the answer that creates it.
type APIKey struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	TenantID string `json:"tenant_id,omitempty"`
	Name     string `json:"name"`
	Secret   string `json:"-"`
}

// CreateTenantKey creates a tenant key for tenantID (POST /admin/api-keys; admin key).
func (c *Client) CreateTenantKey(ctx context.Context, tenantID, name string) (APIKey, error) {
	var created struct {
		Key    APIKey `json:"api_key"`
		Secret string `json:"secret"`
	}
	err := c.Do(ctx, http.MethodPost, "/admin/api-keys", map[string]any{"kind": "tenant", "tenant_id": tenantID, "name": name}, &created)
	created.Key.Secret = created.Secret
	return created.Key, err
}
