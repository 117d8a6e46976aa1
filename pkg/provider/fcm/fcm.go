// Package fcm sends push notifications through Firebase Cloud Messaging's HTTP v1 API: a service
// account's key signs a JWT that Google's token endpoint exchanges for an access token (the
// OAuth 2.0 JWT-bearer flow, golang.org/x/oauth2/jwt, cached until shortly before it expires),
// and each notification is a POST to projects/{project}/messages:send.
package fcm

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name.
const Type = "fcm"

// Google's endpoints, and the scope a send needs.
const (
	DefaultBaseURL  = "https://fcm.googleapis.com"
	DefaultTokenURL = "https://oauth2.googleapis.com/token"
	Scope           = "https://www.googleapis.com/auth/firebase.messaging"
)

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Firebase Cloud Messaging", Channels: []message.Channel{message.Push},
		New: provider.Build(New), Credentials: Credentials{},
	})
}

// Credentials are the service account's key file, as the Firebase console downloads it.
type Credentials struct {
	ServiceAccount string `json:"service_account" form:"Service account key (JSON);secret;multiline;hint=the whole file the Firebase console downloads"`
}

// serviceAccount is what comms reads of the key file.
type serviceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
}

// Adapter is one FCM config.
type Adapter struct {
	account serviceAccount
	send    string // the project's messages:send URL
	client  *http.Client
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	var creds Credentials
	f.Decode("credentials", cfg.Credentials, &creds)
	var none struct{}
	f.Decode("sender", cfg.Sender, &none)
	if cfg.Channel != message.Push {
		f.Add("channel", "must be push")
	}
	a := &Adapter{}
	// The key file has lines: not Required, which refuses control characters.
	if strings.TrimSpace(creds.ServiceAccount) == "" {
		f.Add("credentials.service_account", "is required")
	} else {
		err := json.Unmarshal([]byte(creds.ServiceAccount), &a.account)
		switch {
		case err != nil:
			f.Add("credentials.service_account", "must be the service account's key file (JSON)")
		case a.account.Type != "service_account" || a.account.ProjectID == "" || a.account.ClientEmail == "" || a.account.PrivateKey == "":
			f.Add("credentials.service_account", "must be a service account key with type service_account, project_id, client_email and private_key")
		case !rsaKey(a.account.PrivateKey):
			f.Add("credentials.service_account", "private_key must be the RSA key in PEM (PKCS #8), as Google writes it")
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	tokenURL := env.FCMTokenURL
	if tokenURL == "" {
		tokenURL = DefaultTokenURL
	}
	base := env.FCMBaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	jc := &jwt.Config{Email: a.account.ClientEmail, PrivateKey: []byte(a.account.PrivateKey), PrivateKeyID: a.account.PrivateKeyID,
		Scopes: []string{Scope}, TokenURL: tokenURL}
	// The token's own HTTP calls go through the shared transport, as the sends do.
	plain := &http.Client{Transport: provider.Instrumented(provider.Transport), Timeout: 30 * time.Second}
	src := oauth2.ReuseTokenSource(nil, jc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, plain)))
	a.client = &http.Client{Transport: &oauth2.Transport{Source: src, Base: plain.Transport}, Timeout: 30 * time.Second}
	a.send = base + "/v1/projects/" + a.account.ProjectID + "/messages:send"
	return a, nil
}

// rsaKey reports whether pemKey is a PEM RSA private key, PKCS #8 (Google's) or PKCS #1.
func rsaKey(pemKey string) bool {
	b, _ := pem.Decode([]byte(pemKey))
	if b == nil {
		return false
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		_, ok := k.(*rsa.PrivateKey)
		return ok
	}
	_, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	return err == nil
}

// Mask names the project and the service account, never the key.
func (a *Adapter) Mask() string { return a.account.ProjectID + " (" + a.account.ClientEmail + ")" }

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return struct{}{} }

// request is the body of messages:send.
type request struct {
	ValidateOnly bool       `json:"validate_only,omitempty"`
	Message      fcmMessage `json:"message"`
}

type fcmMessage struct {
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Notification *notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *android          `json:"android,omitempty"`
	APNs         *apnsConfig       `json:"apns,omitempty"`
}

type notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

type android struct {
	Priority     string `json:"priority,omitempty"` // HIGH or NORMAL
	TTL          string `json:"ttl,omitempty"`      // "3600s"
	CollapseKey  string `json:"collapse_key,omitempty"`
	Notification *struct {
		Sound string `json:"sound,omitempty"`
		Tag   string `json:"tag,omitempty"`
	} `json:"notification,omitempty"`
}

type apnsConfig struct {
	Headers map[string]string `json:"headers,omitempty"`
	Payload map[string]any    `json:"payload,omitempty"`
}

// Send posts the notification to m.To, a registration token.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	return a.post(ctx, encode(m))
}

// Validate has FCM check the credentials and the project with a notification to a topic that is
// validated and not delivered (validate_only): Save & Test without a test device.
func (a *Adapter) Validate(ctx context.Context) error {
	_, err := a.post(ctx, request{ValidateOnly: true, Message: fcmMessage{Topic: "comms-save-and-test",
		Notification: &notification{Title: "comms test", Body: "validate only"}}})
	return err
}

func (a *Adapter) post(ctx context.Context, r request) (provider.Result, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.ContentRejected, "", err.Error())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.send, bytes.NewReader(body))
	if err != nil {
		return provider.Result{}, provider.Failure(Type, provider.Unknown, "", err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return provider.Result{}, tokenFailure(re)
		}
		return provider.Result{}, provider.Unreachable(ctx, Type, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode == http.StatusOK {
		var ok struct {
			Name string `json:"name"` // projects/{project}/messages/{id}
		}
		_ = json.Unmarshal(raw, &ok)
		return provider.Result{ProviderMessageID: ok.Name}, nil
	}
	return provider.Result{}, failure(resp, raw)
}

// encode maps a push message onto FCM's: the notification for every platform, with Android's
// and APNs' own fields for what only they carry.
func encode(m provider.Message) request {
	c := m.Push
	if c == nil {
		c = &message.PushContent{Body: m.Text}
	}
	msg := fcmMessage{Token: m.To, Data: c.Data,
		Notification: &notification{Title: c.Title, Body: c.Body, Image: c.Image}}
	r := request{Message: msg}
	and := &android{CollapseKey: c.CollapseKey, Priority: "NORMAL"}
	apnsPriority := "5"
	if c.Priority == "high" {
		and.Priority, apnsPriority = "HIGH", "10"
	}
	headers := map[string]string{"apns-priority": apnsPriority}
	if c.TTLSeconds != nil {
		and.TTL = strconv.Itoa(*c.TTLSeconds) + "s"
		headers["apns-expiration"] = strconv.FormatInt(time.Now().Add(time.Duration(*c.TTLSeconds)*time.Second).Unix(), 10)
	}
	if c.CollapseKey != "" {
		headers["apns-collapse-id"] = c.CollapseKey
	}
	if c.Sound != "" || c.CollapseKey != "" {
		and.Notification = &struct {
			Sound string `json:"sound,omitempty"`
			Tag   string `json:"tag,omitempty"`
		}{c.Sound, c.CollapseKey}
	}
	aps := map[string]any{}
	if c.Badge != nil {
		aps["badge"] = *c.Badge
	}
	if c.Sound != "" {
		aps["sound"] = c.Sound
	}
	r.Message.Android, r.Message.APNs = and, &apnsConfig{Headers: headers}
	if len(aps) > 0 {
		r.Message.APNs.Payload = map[string]any{"aps": aps}
	}
	return r
}

// fcmError is FCM's error body (google.rpc.Status with FcmError details).
type fcmError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type      string `json:"@type"`
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// failure maps FCM's answer onto the taxonomy, by its FcmError code where it gives one
// (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
func failure(resp *http.Response, raw []byte) *provider.Error {
	var e fcmError
	_ = json.Unmarshal(raw, &e)
	errorCode := e.Error.Status
	for _, d := range e.Error.Details {
		if strings.HasSuffix(d.Type, "google.firebase.fcm.v1.FcmError") && d.ErrorCode != "" {
			errorCode = d.ErrorCode
		}
	}
	msg := e.Error.Message
	if msg == "" {
		msg = provider.AnswerText(resp.StatusCode, raw)
	}
	code := provider.Unknown
	switch {
	case errorCode == "UNREGISTERED":
		pe := provider.Failure(Type, provider.InvalidRecipient, errorCode, msg)
		pe.DeviceGone = true
		return pe
	case errorCode == "SENDER_ID_MISMATCH": // the token belongs to another Firebase project
		code = provider.InvalidRecipient
	case errorCode == "INVALID_ARGUMENT":
		code = provider.ContentRejected
		if strings.Contains(strings.ToLower(msg), "registration token") {
			code = provider.InvalidRecipient
		}
	case errorCode == "QUOTA_EXCEEDED" || resp.StatusCode == 429:
		code = provider.RateLimited
	case errorCode == "THIRD_PARTY_AUTH_ERROR" || resp.StatusCode == 401 || resp.StatusCode == 403:
		code = provider.AuthFailed
	case errorCode == "UNAVAILABLE" || errorCode == "INTERNAL" || resp.StatusCode >= 500:
		code = provider.ProviderUnavailable
	}
	pe := provider.Failure(Type, code, errorCode, msg)
	if code == provider.Unknown {
		pe.Permanent = resp.StatusCode < 500
	}
	pe.RetryAfter = provider.RetryAfter(resp.Header)
	return pe
}

// tokenFailure maps a refused token request: Google refuses a revoked or unknown key with 400
// invalid_grant, and a deleted account with 401.
func tokenFailure(re *oauth2.RetrieveError) *provider.Error {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := re.ErrorDescription
	if msg == "" {
		msg = provider.AnswerText(status, re.Body)
	}
	if status >= 500 || status == 429 {
		return provider.Failure(Type, provider.ProviderUnavailable, re.ErrorCode, "token: "+msg)
	}
	return provider.Failure(Type, provider.AuthFailed, re.ErrorCode, "token: "+msg)
}
