// Package provider defines what every provider adapter takes and returns: the message to send,
// the provider's receipt, and a normalized error that says whether retrying can help.
package provider

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Message is what an adapter sends.
type Message struct {
	ID       string // ours; adapters pass it to the provider where they can (Message-ID, metadata)
	TenantID string
	Channel  message.Channel
	To       string
	From     string
	Subject  string
	Text     string
	HTML     string
	Metadata map[string]string
	// Headers are header fields comms adds to an email (List-Unsubscribe and
	// List-Unsubscribe-Post); every email adapter sends them as given.
	Headers map[string]string
	// Push is a push message's content (channel push). To is then the device's token, or a Web
	// Push subscription's endpoint, and Device carries the rest of the device.
	Push   *message.PushContent
	Device *Device
}

// Device is what a push adapter needs of a device past its token: a Web Push subscription's keys
// (base64url).
type Device struct {
	P256DH, Auth string
}

// SortedHeaders returns m's Headers in name order, for adapters that send a list.
func (m Message) SortedHeaders() [][2]string {
	out := make([][2]string, 0, len(m.Headers))
	for k, v := range m.Headers {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// SenderOr is who the message is from: its own From when it has one, else def (the config's
// sender).
func (m Message) SenderOr(def string) string {
	if m.From != "" {
		return m.From
	}
	return def
}

// Result is the provider's receipt.
type Result struct {
	ProviderMessageID string
	// Cost and Currency are what the provider says the message cost, when it says so at send time
	// (Twilio often reports the price only later, in a callback).
	Cost     string
	Currency string
}

// Config is one provider config as an adapter sees it: credentials already decrypted.
type Config struct {
	ID          string // prv_…; Twilio status callbacks name it
	TenantID    string // empty for a system default
	Type        string
	Channel     message.Channel
	Credentials json.RawMessage
	Sender      json.RawMessage
}

// IdleConnsPerHost is how many idle connections an adapter's transport keeps to one host, sized
// for the worker's concurrency (a config may have up to PerConfigInFlight sends at once). Go's
// default keeps two: after each burst of sends nearly every connection would close, and the next
// burst would dial (and TLS-handshake) them all again, a CPU spike for every tenant on the worker.
const IdleConnsPerHost = 512

// Transport is the HTTP transport of the adapters that call a provider's own API host (Twilio,
// Resend, SES): one pool of connections per host, shared by every tenant's configs, since the
// credentials travel in each request.
var Transport http.RoundTripper = NewTransport(nil)

// Instrument wraps, when set (at start-up, before any adapter is built), every transport
// adapters send through: the tracing's HTTP client spans.
var Instrument func(http.RoundTripper) http.RoundTripper

// Instrumented is rt wrapped by Instrument, or rt.
func Instrumented(rt http.RoundTripper) http.RoundTripper {
	if Instrument == nil {
		return rt
	}
	return Instrument(rt)
}

// NewTransport returns a transport like http.DefaultTransport keeping IdleConnsPerHost idle
// connections per host, dialling through dial when it is not nil.
func NewTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * IdleConnsPerHost
	t.MaxIdleConnsPerHost = IdleConnsPerHost
	if dial != nil {
		t.DialContext = dial
	}
	return t
}

// Env is what adapters take from the process rather than from a config: endpoint overrides for
// tests and private endpoints, where callbacks go, and the network policy for tenant-supplied hosts.
type Env struct {
	TwilioBaseURL string // COMMS_TWILIO_BASE_URL; empty = https://api.twilio.com
	SESEndpoint   string // COMMS_SES_ENDPOINT; empty = the region's endpoint
	STSEndpoint   string // COMMS_STS_ENDPOINT, for SES configs that assume a role
	ResendBaseURL string // COMMS_RESEND_BASE_URL; empty = https://api.resend.com
	FCMBaseURL    string // COMMS_FCM_BASE_URL; empty = https://fcm.googleapis.com
	// FCMTokenURL (COMMS_FCM_TOKEN_URL) is where FCM configs get their access tokens; empty =
	// https://oauth2.googleapis.com/token. A service account's own token_uri is not used: a
	// tenant must not point comms at a host of its choosing.
	FCMTokenURL      string
	APNsBaseURL      string // COMMS_APNS_BASE_URL; empty = Apple's production or sandbox host, as the config says
	PublicWebhookURL string // COMMS_PUBLIC_WEBHOOK_URL: base of the URLs providers call back
	// Dial opens connections to tenant-supplied hosts (webhook URLs, SMTP servers). It must refuse
	// private addresses in production (see netguard); nil means net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies TLS to tenant-supplied hosts; nil means the system pool.
	RootCAs *x509.CertPool
	// AllowInsecure permits http:// webhook URLs and unencrypted SMTP (dev and tests only).
	AllowInsecure bool
	// SNSHostPattern (COMMS_SNS_HOST_PATTERN) is what an SNS message's certificate and
	// subscription URLs must match; empty means AWS's own hosts.
	SNSHostPattern string
	// SNSClient fetches SNS signing certificates and confirms subscriptions; nil means a default
	// client. SNSPort replaces 443 in those URLs: for a local fake of SNS only.
	SNSClient *http.Client
	SNSPort   string
}

// DialContext is e.Dial or a plain dialer.
func (e Env) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if e.Dial != nil {
		return e.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Code is a normalized failure reason, the same for every provider.
type Code string

// Codes.
const (
	AuthFailed          Code = "auth_failed"
	InsufficientFunds   Code = "insufficient_funds"
	InvalidRecipient    Code = "invalid_recipient"
	MailboxUnavailable  Code = "mailbox_unavailable" // a transient bounce: mailbox full, temporarily refused
	InvalidSender       Code = "invalid_sender"
	RateLimited         Code = "rate_limited"
	ProviderUnavailable Code = "provider_unavailable"
	ContentRejected     Code = "content_rejected"
	Timeout             Code = "timeout"
	NoProvider          Code = "no_provider"
	Unknown             Code = "unknown"
)

// Error is a classified provider failure. Adapters return it (wrapped or not); Classify turns any
// other error into one.
type Error struct {
	Code      Code
	Permanent bool   // true: retrying the same message cannot succeed
	Provider  string // provider type, for messages such as "twilio: ..."
	RawCode   string // the provider's own code, kept verbatim
	Message   string // the provider's own words
	// RetryAfter is the provider's requested wait, when it sent one.
	RetryAfter time.Duration
	// Suppress ("bounce" or "complaint", as Event.Suppress) says the provider refuses this
	// recipient from now on (it opted out): the tenant's suppression list takes it.
	Suppress string
	// DeviceGone says the push service no longer knows the device (FCM UNREGISTERED, APNs 410,
	// Web Push 404 or 410): it is removed from its profile.
	DeviceGone bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s", e.Provider, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RawCode != "" {
		s += " (" + e.RawCode + ")"
	}
	return s
}

var codeText = map[Code]string{
	AuthFailed:          "authentication failed",
	InsufficientFunds:   "out of funds or account suspended",
	InvalidRecipient:    "invalid recipient",
	MailboxUnavailable:  "mailbox unavailable",
	InvalidSender:       "invalid sender",
	RateLimited:         "rate limited",
	ProviderUnavailable: "unavailable",
	ContentRejected:     "content rejected",
	Timeout:             "timed out",
	NoProvider:          "no provider configured",
	Unknown:             "failed",
}

// Describe is the sentence shown to a tenant: "Twilio: authentication failed (20003): Authenticate".
func (e *Error) Describe() string {
	name := DisplayName(e.Provider)
	s := name + ": " + codeText[e.Code]
	if codeText[e.Code] == "" {
		s = name + ": " + string(e.Code)
	}
	if e.RawCode != "" {
		s += " (" + e.RawCode + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Transient reports whether a code is worth retrying by default.
func (c Code) Transient() bool {
	switch c {
	case RateLimited, ProviderUnavailable, Timeout, Unknown:
		return true
	}
	return false
}

// Failure builds an Error whose Permanent flag follows the code.
func Failure(providerType string, code Code, rawCode, msg string) *Error {
	return &Error{Code: code, Permanent: !code.Transient(), Provider: providerType, RawCode: rawCode, Message: msg}
}

// Classify returns err as a *Error, treating unknown errors as transient and deadline errors as
// timeouts.
func Classify(providerType string, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: Timeout, Provider: providerType, Message: ErrorText(err)}
	}
	return &Error{Code: Unknown, Provider: providerType, Message: ErrorText(err)}
}

// ErrorText is err's message for a tenant's eyes: a failed DNS lookup names the host it looked
// up, not the platform's resolver ("lookup api.example on 10.0.0.2:53: no such host" reads
// "lookup api.example: no such host").
func ErrorText(err error) string {
	msg := err.Error()
	var de *net.DNSError
	if errors.As(err, &de) && de.Server != "" {
		msg = strings.ReplaceAll(msg, " on "+de.Server, "")
	}
	return msg
}

// Unreachable classifies an error that came before any answer from the provider (dialling,
// TLS, a reset, a read cut short): timeout when the attempt's context ended or a deadline passed,
// provider_unavailable otherwise. Both are transient.
func Unreachable(ctx context.Context, providerType string, err error) *Error {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return Failure(providerType, Timeout, "", ErrorText(err))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Failure(providerType, Timeout, "", ErrorText(err))
	}
	return Failure(providerType, ProviderUnavailable, "", ErrorText(err))
}

// AnswerText is what a provider's error answer says, for a tenant's eyes: its body trimmed and
// cut to 200 bytes, or the status's own text when the body is empty.
func AnswerText(status int, body []byte) string {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return msg
}

// RetryAfter reads a Retry-After header given in seconds (the form providers use); 0 when absent
// or malformed.
func RetryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
