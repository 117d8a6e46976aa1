// Package fakeprovider runs local stand-ins for Twilio, AWS SES v2, SMTP, Resend and a tenant's
// webhook endpoint. Each speaks its provider's real wire format (authentication, request
// encoding, success and error bodies) so the adapters are exercised through their real client
// libraries, and each can be told to fail for a recipient with any normalized error class.
package fakeprovider

import (
	"sync"
	"time"

	"github.com/logicspike/comms/pkg/provider"
)

// Received is one message a fake accepted.
type Received struct {
	To, From, Subject, Text, HTML string
	ProviderMessageID             string
	MessageID                     string            // ours, where the wire format carries it
	Extra                         map[string]string // wire details a test may check (StatusCallback, Message-ID)
	Raw                           string            // the whole request or message as received
	At                            time.Time         // when the fake accepted it
}

// recorder is what every fake shares: what it received and how it is told to fail.
type recorder struct {
	mu       sync.Mutex
	received []Received
	failures map[string]*failure
	requests int
}

type failure struct {
	code provider.Code
	left int // failures still to give; -1 forever
}

// FailFor makes every send to recipient fail with the provider's own form of code.
func (r *recorder) FailFor(recipient string, code provider.Code) { r.FailTimes(recipient, code, -1) }

// FailTimes makes the next n sends to recipient fail with code, and later ones succeed.
func (r *recorder) FailTimes(recipient string, code provider.Code, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == nil {
		r.failures = map[string]*failure{}
	}
	r.failures[recipient] = &failure{code: code, left: n}
}

// FailAll makes every send fail with code (an outage); provider.Code("") ends it.
func (r *recorder) FailAll(code provider.Code) { r.FailFor("*", code) }

// Requests counts the sends that reached the fake, failed or not.
func (r *recorder) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *recorder) failure(to string) (provider.Code, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	f, ok := r.failures[to]
	if !ok {
		f, ok = r.failures["*"]
	}
	if !ok || f.left == 0 || f.code == "" {
		return "", false
	}
	if f.left > 0 {
		f.left--
	}
	return f.code, true
}

func (r *recorder) record(m Received) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.At.IsZero() {
		m.At = time.Now()
	}
	r.received = append(r.received, m)
}

// accepted counts what was accepted.
func (r *recorder) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.received)
}

// Received returns a copy of what was accepted, in order.
func (r *recorder) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.received...)
}
