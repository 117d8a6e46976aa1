// Package resend sends email through a tenant's Resend account (POST /emails).
package resend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// Type is the provider type name.
const Type = "resend"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Resend", Channels: []message.Channel{message.Email},
		New:         provider.Build(New),
		Callbacks:   func(provider.Env) (provider.Callbacks, error) { return callbacks{}, nil },
		Credentials: Credentials{}, Sender: Sender{},
	})
}

// DefaultBaseURL is Resend's API.
const DefaultBaseURL = "https://api.resend.com"

// Credentials is a Resend API key with sending access and, to receive delivery events, the
// signing secret of the Resend webhook pointed at /webhooks/resend/{provider_id}.
type Credentials struct {
	APIKey        string `json:"api_key" form:"API key;secret;hint=re_…"`
	WebhookSecret string `json:"webhook_secret" form:"Webhook signing secret;secret;optional;hint=whsec_…, to receive delivery events"`
}

// Sender is the From address on a domain verified in Resend.
type Sender struct {
	From    string   `json:"from" form:"From;hint=Acme <noreply@acme.example>"`
	Domains []string `json:"domains,omitempty" form:"Verified domains;optional;hint=other domains a message's own from may use, comma-separated"`
}

// AllowsFrom reports whether a message may name from as its sender: an address on the domain of
// the config's from or on one of its verified domains.
func (s Sender) AllowsFrom(from string) bool {
	return provider.EmailFromAllowed(from, s.From, s.Domains)
}

// Adapter is one Resend config.
type Adapter struct {
	creds  Credentials
	sender Sender
	base   string
	client *http.Client
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	a := Adapter{base: DefaultBaseURL, client: &http.Client{Transport: provider.Instrumented(provider.Transport), Timeout: time.Minute}}
	f.Decode("credentials", cfg.Credentials, &a.creds)
	f.Decode("sender", cfg.Sender, &a.sender)
	if cfg.Channel != message.Email {
		f.Add("channel", "resend sends email only")
	}
	if f.Required("credentials.api_key", a.creds.APIKey) && (!strings.HasPrefix(a.creds.APIKey, "re_") || len(a.creds.APIKey) < 10 || strings.ContainsAny(a.creds.APIKey, " \t")) {
		f.Add("credentials.api_key", "must be a Resend API key (re_…)")
	}
	if a.creds.WebhookSecret != "" {
		if _, err := standardwebhooks.DecodeSecret(a.creds.WebhookSecret); err != nil {
			f.Add("credentials.webhook_secret", "is not a Resend webhook signing secret: %v", err)
		}
	}
	f.Domains("sender.domains", a.sender.Domains)
	if f.Required("sender.from", a.sender.From) {
		if _, err := mail.ParseAddress(a.sender.From); err != nil {
			f.Add("sender.from", "must be an email address such as \"Acme <noreply@acme.example>\"")
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if env.ResendBaseURL != "" {
		a.base = strings.TrimRight(env.ResendBaseURL, "/")
	}
	return &a, nil
}

// Mask identifies the key: re_1…abcd.
func (a *Adapter) Mask() string { return provider.Mask(a.creds.APIKey) }

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return a.sender }

// Email is the body of POST /emails.
type Email struct {
	From    string            `json:"from"`
	To      []string          `json:"to"`
	Subject string            `json:"subject"`
	Text    string            `json:"text,omitempty"`
	HTML    string            `json:"html,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Tags    []Tag             `json:"tags,omitempty"`
}

// Tag is a Resend email tag (letters, digits, _ and - only).
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ErrorBody is Resend's error response.
type ErrorBody struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// Send posts one email. The message id is sent as Resend's Idempotency-Key, so a retry after a
// lost response does not send the email twice.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	e := Email{From: m.SenderOr(a.sender.From), To: []string{m.To}, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Headers: m.Headers}
	if m.ID != "" {
		e.Tags = []Tag{{Name: "comms_message_id", Value: m.ID}}
	}
	body, err := json.Marshal(e)
	if err != nil {
		return provider.Result{}, fmt.Errorf("resend: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/emails", bytes.NewReader(body))
	if err != nil {
		return provider.Result{}, fmt.Errorf("resend: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.creds.APIKey)
	req.Header.Set("Content-Type", "application/json")
	if m.ID != "" {
		req.Header.Set("Idempotency-Key", m.ID)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return provider.Result{}, provider.Unreachable(ctx, Type, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.ProviderUnavailable, "", "reading response: "+err.Error())
	}
	if resp.StatusCode/100 == 2 {
		var ok struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &ok); err != nil || ok.ID == "" {
			return provider.Result{}, provider.Failure(Type, provider.Unknown, "", "response carried no id")
		}
		return provider.Result{ProviderMessageID: ok.ID}, nil
	}
	return provider.Result{}, classify(resp, raw)
}

// codes maps Resend error names (https://resend.com/docs/api-reference/errors) to ours.
var codes = map[string]provider.Code{
	"missing_api_key":        provider.AuthFailed,
	"invalid_api_key":        provider.AuthFailed,
	"restricted_api_key":     provider.AuthFailed,
	"invalid_from_address":   provider.InvalidSender,
	"rate_limit_exceeded":    provider.RateLimited,
	"daily_quota_exceeded":   provider.RateLimited,
	"monthly_quota_exceeded": provider.InsufficientFunds,
	"application_error":      provider.ProviderUnavailable,
	"internal_server_error":  provider.ProviderUnavailable,
}

func classify(resp *http.Response, raw []byte) error {
	var eb ErrorBody
	_ = json.Unmarshal(raw, &eb)
	msg := eb.Message
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	rawCode := eb.Name
	if rawCode == "" {
		rawCode = strconv.Itoa(resp.StatusCode)
	}
	code, ok := codes[eb.Name]
	lower := strings.ToLower(msg)
	switch {
	case ok:
	case eb.Name == "validation_error" && resp.StatusCode == http.StatusForbidden:
		// "You can only send testing emails to your own email address": the domain is unverified.
		code = provider.InvalidSender
	case eb.Name == "validation_error" && strings.Contains(lower, "`to`"):
		code = provider.InvalidRecipient
	case eb.Name == "validation_error" && strings.Contains(lower, "`from`"):
		code = provider.InvalidSender
	case resp.StatusCode == http.StatusTooManyRequests:
		code = provider.RateLimited
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		code = provider.AuthFailed
	case resp.StatusCode >= 500:
		code = provider.ProviderUnavailable
	default:
		code = provider.ContentRejected
	}
	e := provider.Failure(Type, code, rawCode, msg)
	e.RetryAfter = provider.RetryAfter(resp.Header)
	return e
}

// WebhookSecret is a stored config's webhook signing secret ("" when none is set).
func WebhookSecret(credentials []byte) string {
	var c Credentials
	_ = json.Unmarshal(credentials, &c)
	return c.WebhookSecret
}
