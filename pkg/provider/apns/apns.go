// Package apns sends push notifications through the Apple Push Notification service's HTTP/2
// API with token-based authentication: an ES256 JWT signed with the team's .p8 key, made anew
// every 50 minutes (Apple refuses one older than an hour, and one made more often than every 20
// minutes), and a POST per notification to /3/device/{token} with the app's bundle id as topic.
package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name.
const Type = "apns"

// Apple's hosts.
const (
	ProductionURL = "https://api.push.apple.com"
	SandboxURL    = "https://api.sandbox.push.apple.com"
)

// TokenLifetime is how long comms uses one provider token before making the next.
const TokenLifetime = 50 * time.Minute

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Apple Push Notification service", Channels: []message.Channel{message.Push},
		New: provider.Build(New), Credentials: Credentials{}, Sender: Sender{},
	})
}

// Credentials are the team's authentication key, as the Apple Developer site downloads it.
type Credentials struct {
	KeyID      string `json:"key_id" form:"Key ID;hint=10 characters, from Certificates, Identifiers & Profiles → Keys"`
	TeamID     string `json:"team_id" form:"Team ID;hint=10 characters"`
	PrivateKey string `json:"private_key" form:"Key (.p8);secret;multiline;hint=the whole AuthKey_….p8 file"`
}

// Sender is the app the notifications are for and which of Apple's services they go through.
type Sender struct {
	Topic       string `json:"topic" form:"Bundle ID;hint=com.acme.app"`
	Environment string `json:"environment,omitempty" form:"Environment;optional;hint=production (default) or sandbox for development builds"`
}

// Adapter is one APNs config.
type Adapter struct {
	creds  Credentials
	sender Sender
	key    *ecdsa.PrivateKey
	base   string
	client *http.Client

	mu      sync.Mutex
	token   string
	tokenAt time.Time
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	a := &Adapter{}
	f.Decode("credentials", cfg.Credentials, &a.creds)
	f.Decode("sender", cfg.Sender, &a.sender)
	if cfg.Channel != message.Push {
		f.Add("channel", "must be push")
	}
	for _, c := range []struct{ field, v string }{{"credentials.key_id", a.creds.KeyID}, {"credentials.team_id", a.creds.TeamID}} {
		if f.Required(c.field, c.v) && (len(c.v) != 10 || strings.ToUpper(c.v) != c.v) {
			f.Add(c.field, "must be the 10 characters Apple shows (letters and digits)")
		}
	}
	// A PEM file has lines: not Required, which refuses control characters.
	if strings.TrimSpace(a.creds.PrivateKey) == "" {
		f.Add("credentials.private_key", "is required")
	} else if a.key = parseKey(a.creds.PrivateKey); a.key == nil {
		f.Add("credentials.private_key", "must be the .p8 file's P-256 key (PEM, PKCS #8)")
	}
	f.Required("sender.topic", a.sender.Topic)
	switch a.sender.Environment {
	case "", "production":
		a.base = ProductionURL
	case "sandbox":
		a.base = SandboxURL
	default:
		f.Add("sender.environment", "must be production or sandbox")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if env.APNsBaseURL != "" {
		a.base = env.APNsBaseURL
	}
	// Its own HTTP/2 connections: APNs takes many concurrent streams on one connection.
	t := provider.NewTransport(nil)
	t.ForceAttemptHTTP2 = true
	t.TLSClientConfig = &tls.Config{RootCAs: env.RootCAs, MinVersion: tls.VersionTLS12}
	a.client = &http.Client{Transport: provider.Instrumented(t), Timeout: 30 * time.Second}
	return a, nil
}

// parseKey reads a .p8 key: PEM, or its base64 body alone or with the PEM lines run together (as
// a single-line form field leaves a pasted file).
func parseKey(p8 string) *ecdsa.PrivateKey {
	var der []byte
	if b, _ := pem.Decode([]byte(p8)); b != nil {
		der = b.Bytes
	} else {
		body := strings.NewReplacer("-----BEGIN PRIVATE KEY-----", "", "-----END PRIVATE KEY-----", "", " ", "", "\n", "", "\r", "").Replace(p8)
		der, _ = base64.StdEncoding.DecodeString(body)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil
	}
	ec, _ := k.(*ecdsa.PrivateKey)
	return ec
}

// Mask names the key and the team, never the key itself.
func (a *Adapter) Mask() string { return "key " + a.creds.KeyID + ", team " + a.creds.TeamID }

// Public is the app and environment, shown to the tenant.
func (a *Adapter) Public() any { return a.sender }

// providerToken is the current JWT, made anew once TokenLifetime passed.
func (a *Adapter) providerToken(now time.Time) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && now.Sub(a.tokenAt) < TokenLifetime {
		return a.token, nil
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.creds.TeamID, "iat": now.Unix()})
	tok.Header["kid"] = a.creds.KeyID
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", err
	}
	a.token, a.tokenAt = s, now
	return s, nil
}

// Send posts the notification to the device token m.To.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	c := m.Push
	if c == nil {
		c = &message.PushContent{Body: m.Text}
	}
	body, _ := json.Marshal(payload(c))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/3/device/"+m.To, bytes.NewReader(body))
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.InvalidRecipient, "", err.Error())
	}
	tok, err := a.providerToken(time.Now())
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.AuthFailed, "", "sign the provider token: "+err.Error())
	}
	req.Header.Set("authorization", "bearer "+tok)
	req.Header.Set("apns-topic", a.sender.Topic)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", map[bool]string{true: "10", false: "5"}[c.Priority == "high"])
	if c.TTLSeconds != nil {
		req.Header.Set("apns-expiration", strconv.FormatInt(time.Now().Add(time.Duration(*c.TTLSeconds)*time.Second).Unix(), 10))
	}
	if c.CollapseKey != "" {
		req.Header.Set("apns-collapse-id", c.CollapseKey)
	}
	req.Header.Set("content-type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return provider.Result{}, provider.Unreachable(ctx, Type, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusOK {
		return provider.Result{ProviderMessageID: resp.Header.Get("apns-id")}, nil
	}
	return provider.Result{}, failure(resp, raw)
}

// payload is the notification as APNs takes it: aps, and the data's keys beside it for the app.
func payload(c *message.PushContent) map[string]any {
	alert := map[string]string{}
	if c.Title != "" {
		alert["title"] = c.Title
	}
	if c.Body != "" {
		alert["body"] = c.Body
	}
	aps := map[string]any{"alert": alert}
	if c.Badge != nil {
		aps["badge"] = *c.Badge
	}
	if c.Sound != "" {
		aps["sound"] = c.Sound
	}
	if c.Image != "" {
		aps["mutable-content"] = 1 // a notification service extension fetches the image
	}
	out := map[string]any{"aps": aps}
	for k, v := range c.Data {
		out[k] = v
	}
	if c.Image != "" {
		out["image"] = c.Image
	}
	return out
}

// failure maps APNs' answer onto the taxonomy by its reason
// (https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns).
func failure(resp *http.Response, raw []byte) *provider.Error {
	var e struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(raw, &e)
	msg := e.Reason
	if msg == "" {
		msg = provider.AnswerText(resp.StatusCode, raw)
	}
	code := provider.Unknown
	switch s := resp.StatusCode; {
	case s == 410 || e.Reason == "BadDeviceToken" || e.Reason == "Unregistered" || e.Reason == "ExpiredToken":
		pe := provider.Failure(Type, provider.InvalidRecipient, e.Reason, msg)
		pe.DeviceGone = true
		return pe
	case e.Reason == "DeviceTokenNotForTopic":
		code = provider.InvalidRecipient
	case s == 403: // InvalidProviderToken, ExpiredProviderToken, MissingProviderToken, BadCertificate
		code = provider.AuthFailed
	case e.Reason == "BadTopic" || e.Reason == "TopicDisallowed" || e.Reason == "MissingTopic":
		code = provider.InvalidSender
	case s == 413:
		code = provider.ContentRejected
	case s == 429:
		code = provider.RateLimited
	case s >= 500:
		code = provider.ProviderUnavailable
	case s == 400:
		code = provider.ContentRejected
	}
	pe := provider.Failure(Type, code, strings.TrimSpace(e.Reason+" "+strconv.Itoa(resp.StatusCode)), msg)
	if code == provider.Unknown {
		pe.Permanent = resp.StatusCode < 500
	}
	pe.RetryAfter = provider.RetryAfter(resp.Header)
	return pe
}
