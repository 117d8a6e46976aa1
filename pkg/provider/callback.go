package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Event is one delivery event a provider reported, normalized: the same fields for every
// provider, whatever its wire format.
type Event struct {
	ProviderConfigID  string
	ProviderType      string
	EventKey          string // unique per provider event within a config: what deduplicates retries
	ProviderMessageID string
	Status            message.Status // a delivery status, or an event kind (opened, clicked, accepted, delayed)
	ErrorCode         string         // normalized, when the event is a failure
	ProviderCode      string         // the provider's own code (Twilio 30003, SMTP 5.1.1)
	Reason            string         // the provider's words
	Recipient         string         // as the provider reported it, for suppression
	Suppress          string         // "", "bounce" or "complaint": add the recipient to the suppression list
	OccurredAt        time.Time      // the provider's time of the event
	Payload           []byte         // the callback as received, JSON
}

// MaxCallbackBody bounds a callback body. Twilio's and Resend's are a few KB; an SES event through
// SNS carries the message's headers and stays well under SNS's 256 KB limit.
const MaxCallbackBody = 256 << 10

// CallbackRequest is one call a provider made to the receiver, for the config its URL names.
type CallbackRequest struct {
	Config Config // credentials open: the signing secrets are in them
	URL    string // the URL as the provider called it (behind a proxy, the public one)
	Header http.Header
	Body   []byte // at most MaxCallbackBody
	Now    time.Time
}

// Callbacks verifies and normalizes one provider's delivery callbacks. Verification comes first
// and is all or nothing: a request that fails it is refused before its body is interpreted.
type Callbacks interface {
	// Receive returns the events req reports; none for a call that reports no delivery event (an
	// SNS subscription confirmation). Errors wrap ErrUnverified (answered 401), ErrMalformed (400)
	// or ErrUnavailable (502: the provider retries).
	Receive(ctx context.Context, req CallbackRequest) ([]Event, error)
}

// Callback errors, as the receiver answers them.
var (
	ErrUnverified  = errors.New("callback not verified")
	ErrMalformed   = errors.New("malformed callback")
	ErrUnavailable = errors.New("callback not handled now")
)

// Unverified is a verification failure.
func Unverified(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnverified, fmt.Sprintf(format, args...))
}

// Malformed is a parse failure of a verified body.
func Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Truncate bounds the provider's words kept with an event.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// InboundMessage is a message a person sent to one of a config's numbers, normalized.
type InboundMessage struct {
	ProviderMessageID string // the provider's id: what deduplicates its retries
	From, To          string // the person, and the config's number it was sent to
	Text              string
	Payload           []byte // the request as received, JSON
}

// InboundReceiver verifies and parses a provider's inbound-message webhook, as its Callbacks do
// its status callbacks (the same errors); a provider type whose Callbacks implement it takes
// inbound messages at /webhooks/{type}/{provider_id}/inbound.
type InboundReceiver interface {
	ReceiveInbound(ctx context.Context, req CallbackRequest) ([]InboundMessage, error)
	// InboundAnswer is the body and content type the provider expects in return (Twilio: an
	// empty TwiML response, so that nothing is sent back).
	InboundAnswer() (contentType string, body []byte)
}

// InboundConfigurer is implemented by an adapter that can point its account's incoming-message
// webhook at comms itself (a Twilio number's "A message comes in" URL). Save & Test calls it
// after a successful test send; what it could not do is reported, never a failure of the test.
type InboundConfigurer interface {
	ConfigureInbound(ctx context.Context, url string) InboundSetup
}

// InboundSetup is what ConfigureInbound did: Configured lists what now sends its incoming
// messages to comms (numbers, a Messaging Service); Detail says what was not done, and why.
type InboundSetup struct {
	Configured []string `json:"configured"`
	Detail     string   `json:"detail,omitempty"`
}
