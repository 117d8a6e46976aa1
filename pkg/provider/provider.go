// Package provider defines what every provider adapter takes and returns: the message to send,
// the provider's receipt, and a normalized error that says whether retrying can help.
package provider

import (
	"context"
	"errors"
	"fmt"
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
}

// Result is the provider's receipt.
type Result struct {
	ProviderMessageID string
}

// Code is a normalized failure reason, the same for every provider.
type Code string

// Codes.
const (
	AuthFailed          Code = "auth_failed"
	InsufficientFunds   Code = "insufficient_funds"
	InvalidRecipient    Code = "invalid_recipient"
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

// Classify returns err as a *Error, treating unknown errors as transient and deadline errors as
// timeouts.
func Classify(providerType string, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: Timeout, Provider: providerType, Message: err.Error()}
	}
	return &Error{Code: Unknown, Provider: providerType, Message: err.Error()}
}
