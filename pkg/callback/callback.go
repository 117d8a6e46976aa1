// Package callback verifies providers' delivery callbacks and normalizes them into one event
// model (store.Callback): Twilio status callbacks, SES events through SNS, and Resend webhooks.
//
// Verification comes first and is all or nothing: a request that fails it is rejected before its
// body is interpreted. Parsers face the internet and are fuzzed.
package callback

import (
	"errors"
	"fmt"
)

// MaxBody bounds a callback body. Twilio's and Resend's are a few KB; an SES event through SNS
// carries the message's headers and stays well under SNS's 256 KB limit.
const MaxBody = 256 << 10

// ErrUnverified is wrapped by every verification failure: answered 401, nothing recorded.
var ErrUnverified = errors.New("callback not verified")

// ErrMalformed is wrapped by every parse failure of a verified body: answered 400.
var ErrMalformed = errors.New("malformed callback")

func unverified(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnverified, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
