// Package sandbox is a provider that sends nothing: it records every message it receives and
// answers after a configurable latency. The dev stack and the load tests use it as the system
// default; tests use its Recorder to count how often each message reached a provider.
//
// Magic recipients exercise failures, like Twilio's test numbers:
//
//	+15005550001                 invalid_recipient (permanent)
//	+15005550002                 provider_unavailable (transient)
//	invalid@sandbox.example.com  invalid_recipient (permanent)
package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name in provider_configs.
const Type = "sandbox"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Sandbox", Channels: []message.Channel{message.SMS, message.Email}, OperatorOnly: true,
	})
}

// Settings is the sandbox config's settings JSON.
type Settings struct {
	LatencyMS int `json:"latency_ms"`
}

// Recorder counts deliveries per message id. It is safe for concurrent use.
type Recorder struct {
	mu          sync.Mutex
	counts      map[string]int
	total       int
	inFlight    int
	maxInFlight int
	holds       map[string]chan struct{}
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{counts: map[string]int{}, holds: map[string]chan struct{}{}}
}

// record counts a delivery and returns the channel to wait on before answering, if the
// recipient is held.
func (r *Recorder) record(id, to string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[id]++
	r.total++
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	return r.holds[to]
}

func (r *Recorder) finish() {
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
}

// Hold makes sends to recipient wait until the returned release is called (or their context
// ends), so a test can keep a message unfinished while others complete.
func (r *Recorder) Hold(recipient string) (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.holds[recipient] = ch
	r.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// MaxInFlight returns the most sends the sandbox was answering at once.
func (r *Recorder) MaxInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}

// Count returns how many times message id reached the sandbox.
func (r *Recorder) Count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[id]
}

// Snapshot returns a copy of every count.
func (r *Recorder) Snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		out[k] = v
	}
	return out
}

// Total returns how many sends the sandbox received.
func (r *Recorder) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Provider is one sandbox config.
type Provider struct {
	latency time.Duration
	rec     *Recorder
}

// New builds a sandbox from its settings JSON; rec may be nil.
func New(settings json.RawMessage, rec *Recorder) (*Provider, error) {
	var s Settings
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &s); err != nil {
			return nil, fmt.Errorf("sandbox settings: %w", err)
		}
	}
	if s.LatencyMS < 0 {
		return nil, fmt.Errorf("sandbox settings: latency_ms must not be negative")
	}
	return &Provider{latency: time.Duration(s.LatencyMS) * time.Millisecond, rec: rec}, nil
}

// Send records the message as received (the moment a real provider has accepted it), then
// answers after the configured latency.
func (p *Provider) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	switch m.To {
	case "+15005550001", "invalid@sandbox.example.com":
		return provider.Result{}, &provider.Error{Code: provider.InvalidRecipient, Permanent: true, Provider: Type,
			RawCode: "21211", Message: "the 'To' number " + m.To + " is not a valid recipient"}
	case "+15005550002":
		return provider.Result{}, &provider.Error{Code: provider.ProviderUnavailable, Provider: Type,
			RawCode: "503", Message: "sandbox is unavailable for this recipient"}
	}
	var hold <-chan struct{}
	if p.rec != nil {
		hold = p.rec.record(m.ID, m.To)
		defer p.rec.finish()
	}
	if p.latency > 0 {
		t := time.NewTimer(p.latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return provider.Result{}, &provider.Error{Code: provider.Timeout, Provider: Type, Message: ctx.Err().Error()}
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return provider.Result{}, &provider.Error{Code: provider.Timeout, Provider: Type, Message: ctx.Err().Error()}
		}
	}
	return provider.Result{ProviderMessageID: "sb_" + ids.Random(20)}, nil
}

// Mask is empty: the sandbox has no account.
func (p *Provider) Mask() string { return "" }

// Public shows the sandbox's settings.
func (p *Provider) Public() any { return Settings{LatencyMS: int(p.latency / time.Millisecond)} }
