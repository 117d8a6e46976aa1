// Package webhook delivers messages to a tenant's own HTTP endpoint: a JSON POST signed per the
// Standard Webhooks specification (webhook-id, webhook-timestamp, webhook-signature: v1,HMAC-SHA256).
// Any 2xx means accepted.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// Type is the provider type name.
const Type = "webhook"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Webhook", Channels: []message.Channel{message.SMS, message.Email},
		New: provider.Build(New), Credentials: Credentials{},
	})
}

// Credentials are the endpoint and the signing secret (whsec_ followed by base64 of 24–64 bytes).
type Credentials struct {
	URL    string `json:"url" form:"URL;hint=https://…"`
	Secret string `json:"secret" form:"Signing secret;secret;hint=whsec_ followed by base64 of 24–64 bytes"`
}

// Payload is the JSON body the endpoint receives.
type Payload struct {
	Type      string    `json:"type"` // "message.send"
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the message.
type Data struct {
	ID       string            `json:"id"`
	TenantID string            `json:"tenant_id"`
	Channel  message.Channel   `json:"channel"`
	To       string            `json:"to"`
	From     string            `json:"from,omitempty"`
	Subject  string            `json:"subject,omitempty"`
	Text     string            `json:"text,omitempty"`
	HTML     string            `json:"html,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Test     bool              `json:"test,omitempty"` // a Save & Test send
}

// Adapter is one webhook config.
type Adapter struct {
	creds  Credentials
	key    []byte
	client *http.Client
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	var a Adapter
	f.Decode("credentials", cfg.Credentials, &a.creds)
	var none struct{}
	f.Decode("sender", cfg.Sender, &none)
	if cfg.Channel != message.Email && cfg.Channel != message.SMS {
		f.Add("channel", "must be sms or email")
	}
	if f.Required("credentials.url", a.creds.URL) {
		u, err := url.Parse(a.creds.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			f.Add("credentials.url", "must be an absolute https:// URL")
		case u.Scheme == "http" && !env.AllowInsecure:
			f.Add("credentials.url", "must use https")
		case u.User != nil:
			f.Add("credentials.url", "must not carry credentials; the request is signed with the secret")
		}
	}
	if f.Required("credentials.secret", a.creds.Secret) {
		key, err := standardwebhooks.DecodeSecret(a.creds.Secret)
		if err != nil {
			f.Add("credentials.secret", "%v", err)
		}
		a.key = key
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	// Tenant-supplied URL: connect only through the guarded dialer, never follow redirects (a 30x
	// to an internal address would slip past it otherwise), and use no proxy from the environment.
	t := provider.NewTransport(env.DialContext)
	t.Proxy = nil
	t.TLSClientConfig = &tls.Config{RootCAs: env.RootCAs, MinVersion: tls.VersionTLS12}
	a.client = &http.Client{
		Timeout:       time.Minute,
		Transport:     provider.Instrumented(t),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &a, nil
}

// Mask shows the endpoint's host, never the secret.
func (a *Adapter) Mask() string {
	u, err := url.Parse(a.creds.URL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return struct{}{} }

// Send posts the message. The webhook-id is our message id, so the endpoint can deduplicate
// a retried delivery.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	now := time.Now()
	id := m.ID
	if id == "" {
		id = "test_" + ids.Random(20)
	}
	body, err := json.Marshal(Payload{Type: "message.send", Timestamp: now.UTC(), Data: Data{
		ID: id, TenantID: m.TenantID, Channel: m.Channel, To: m.To, From: m.From, Subject: m.Subject,
		Text: m.Text, HTML: m.HTML, Metadata: m.Metadata, Test: m.ID == "",
	}})
	if err != nil {
		return provider.Result{}, fmt.Errorf("webhook: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.creds.URL, bytes.NewReader(body))
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.Unknown, "", err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "comms-webhook/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", standardwebhooks.Sign(a.key, id, now, body))
	resp, err := a.client.Do(req)
	if err != nil {
		return provider.Result{}, provider.Unreachable(ctx, Type, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		// The endpoint may name its own id for the message; otherwise ours identifies it.
		var ack struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &ack) == nil && ack.ID != "" && len(ack.ID) <= 200 {
			return provider.Result{ProviderMessageID: ack.ID}, nil
		}
		return provider.Result{ProviderMessageID: id}, nil
	}
	msg := provider.AnswerText(resp.StatusCode, raw)
	code := provider.Unknown
	switch s := resp.StatusCode; {
	case s == 401 || s == 403:
		code = provider.AuthFailed
	case s == 429:
		code = provider.RateLimited
	case s == 408 || s == 504:
		code = provider.Timeout
	case s >= 500:
		code = provider.ProviderUnavailable
	case s == 400 || s == 413 || s == 422:
		code = provider.ContentRejected
	}
	e := provider.Failure(Type, code, strconv.Itoa(resp.StatusCode), msg)
	if code == provider.Unknown {
		e.Permanent = resp.StatusCode < 500 // 3xx (redirects are not followed) and other 4xx
	}
	e.RetryAfter = provider.RetryAfter(resp.Header)
	return provider.Result{}, e
}
