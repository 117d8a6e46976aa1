// Package webpush sends push notifications to browsers through their push services (RFC 8030):
// the payload encrypted to the subscription's keys (RFC 8291), the request signed with the
// config's VAPID key (RFC 8292). The push service is the browser's (Google's, Mozilla's, Apple's):
// its host comes from the subscription, so it is dialled as a tenant-supplied host.
package webpush

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	wp "github.com/logicspike/comms/pkg/webpush"
)

// Type is the provider type name.
const Type = "webpush"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Web Push", Channels: []message.Channel{message.Push},
		New: provider.Build(New), Credentials: Credentials{},
		KeptCredentials: []string{"public_key", "private_key"},
	})
}

// Credentials are the VAPID contact and key pair. Without keys, comms makes a pair when the
// config is created; the public key is shown on the config (vapid_public_key) for the page's
// subscribe call.
type Credentials struct {
	Subject    string `json:"subject" form:"Contact;hint=mailto:ops@your-company.example"`
	PublicKey  string `json:"public_key,omitempty" form:"VAPID public key;optional;hint=leave both keys empty to have comms make a pair"`
	PrivateKey string `json:"private_key,omitempty" form:"VAPID private key;secret;optional"`
}

// DefaultTTL is how long a push service keeps a notification for an offline browser when the
// message does not say: four weeks, the longest they keep one.
const DefaultTTL = 4 * 7 * 24 * time.Hour

// Adapter is one Web Push config.
type Adapter struct {
	creds     Credentials
	vapid     *wp.VAPID
	client    *http.Client
	allowHTTP bool
}

// New validates cfg, making a VAPID key pair when it has none, and returns its adapter.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	a := Adapter{allowHTTP: env.AllowInsecure}
	f.Decode("credentials", cfg.Credentials, &a.creds)
	var shown Sender // what Public showed, stored as the config's sender: derived, never given
	f.Decode("sender", cfg.Sender, &shown)
	if cfg.Channel != message.Push {
		f.Add("channel", "must be push")
	}
	f.Required("credentials.subject", a.creds.Subject)
	if err := f.Err(); err != nil {
		return nil, err
	}
	if a.creds.PublicKey == "" && a.creds.PrivateKey == "" {
		pub, priv, err := wp.GenerateVAPID()
		if err != nil {
			return nil, fmt.Errorf("webpush: make a VAPID key pair: %w", err)
		}
		a.creds.PublicKey, a.creds.PrivateKey = pub, priv
	}
	v, err := wp.NewVAPID(a.creds.Subject, a.creds.PublicKey, a.creds.PrivateKey)
	if err != nil {
		field, msg, _ := strings.Cut(err.Error(), ": ")
		f.Add("credentials."+field, "%s", msg)
		return nil, f.Err()
	}
	a.vapid = v
	// The push service's host comes from a browser: connect only through the guarded dialer and
	// never follow a redirect, as for a tenant's webhook URL.
	t := provider.NewTransport(env.DialContext)
	t.Proxy = nil
	t.TLSClientConfig = &tls.Config{RootCAs: env.RootCAs, MinVersion: tls.VersionTLS12}
	a.client = &http.Client{
		Timeout:       30 * time.Second,
		Transport:     provider.Instrumented(t),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &a, nil
}

// Credentials are the config's credentials with the keys it made, to be sealed and stored.
func (a *Adapter) Credentials() json.RawMessage {
	b, _ := json.Marshal(a.creds)
	return b
}

// Mask names the key pair by its public key, which is not secret.
func (a *Adapter) Mask() string { return "VAPID " + a.vapid.PublicKey()[:8] + "…" }

// Sender is what a Web Push config shows of itself: its VAPID public key, which a page subscribes
// with as its applicationServerKey. It is derived from the credentials; a tenant gives none.
type Sender struct {
	VAPIDPublicKey string `json:"vapid_public_key,omitempty"`
}

// Public shows the VAPID public key.
func (a *Adapter) Public() any { return Sender{VAPIDPublicKey: a.vapid.PublicKey()} }

// Payload is what the browser's service worker receives in its push event (event.data.json()).
type Payload struct {
	ID    string            `json:"id,omitempty"` // the comms message id
	Title string            `json:"title,omitempty"`
	Body  string            `json:"body,omitempty"`
	Data  map[string]string `json:"data,omitempty"`
	Image string            `json:"image,omitempty"`
	Badge *int              `json:"badge,omitempty"`
	Sound string            `json:"sound,omitempty"`
	// Tag is the collapse key, as the Notifications API calls it: a notification with the same
	// tag replaces the one shown.
	Tag string `json:"tag,omitempty"`
}

// topic is what RFC 8030 §5.4 allows in a Topic header: a push service keeps only the newest
// message of a topic for an offline browser.
var topic = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Send encrypts the notification to the subscription (m.To its endpoint, m.Device its keys) and
// posts it to the push service.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	if m.Device == nil {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", "no subscription keys")
	}
	keys, err := wp.ParseKeys(m.Device.P256DH, m.Device.Auth)
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", err.Error())
	}
	if msg := a.checkEndpoint(m.To); msg != "" {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", msg)
	}
	c := m.Push
	if c == nil {
		c = &message.PushContent{Body: m.Text}
	}
	plain, _ := json.Marshal(Payload{ID: m.ID, Title: c.Title, Body: c.Body, Data: c.Data, Image: c.Image, Badge: c.Badge,
		Sound: c.Sound, Tag: c.CollapseKey})
	body, err := wp.Encrypt(keys, plain)
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.ContentRejected, "", err.Error())
	}
	auth, err := a.vapid.Authorization(m.To, time.Now())
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.To, bytes.NewReader(body))
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", err.Error())
	}
	ttl := DefaultTTL
	if c.TTLSeconds != nil {
		ttl = time.Duration(*c.TTLSeconds) * time.Second
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("TTL", strconv.Itoa(int(ttl.Seconds())))
	req.Header.Set("Urgency", map[string]string{"high": "high", "normal": "normal", "": "normal"}[c.Priority])
	if topic.MatchString(c.CollapseKey) {
		req.Header.Set("Topic", c.CollapseKey)
	}
	req.Header.Set("Authorization", auth)
	resp, err := a.client.Do(req)
	if err != nil {
		return provider.Result{}, provider.Unreachable(ctx, Type, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		// 201 Created names the push message resource (RFC 8030 §5).
		return provider.Result{ProviderMessageID: resp.Header.Get("Location")}, nil
	}
	return provider.Result{}, failure(resp, raw)
}

// failure maps a push service's refusal onto the taxonomy (RFC 8030 §5, and what Google's,
// Mozilla's and Apple's services answer).
func failure(resp *http.Response, raw []byte) *provider.Error {
	msg := provider.AnswerText(resp.StatusCode, raw)
	code := provider.Unknown
	switch s := resp.StatusCode; {
	case s == 404 || s == 410: // the subscription expired or the browser unsubscribed
		e := provider.Failure(Type, provider.InvalidRecipient, strconv.Itoa(s), msg)
		e.DeviceGone = true
		return e
	case s == 401:
		code = provider.AuthFailed // the VAPID token itself was refused
	case s == 403:
		// The subscription was made with another applicationServerKey: this one device cannot
		// be reached with this config's key.
		code = provider.InvalidRecipient
	case s == 429:
		code = provider.RateLimited
	case s == 413 || s == 400:
		code = provider.ContentRejected
	case s >= 500:
		code = provider.ProviderUnavailable
	}
	e := provider.Failure(Type, code, strconv.Itoa(resp.StatusCode), msg)
	if code == provider.Unknown {
		e.Permanent = resp.StatusCode < 500
	}
	e.RetryAfter = provider.RetryAfter(resp.Header)
	return e
}

// checkEndpoint refuses what is not an absolute https URL (http only where insecure endpoints are
// allowed: the dev stack's local push service).
func (a *Adapter) checkEndpoint(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return "the subscription's endpoint is not an absolute URL"
	case u.Scheme == "https", u.Scheme == "http" && a.allowHTTP:
		return ""
	}
	return "the subscription's endpoint must use https"
}
