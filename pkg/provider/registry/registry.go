// Package registry turns provider configs into adapters: it knows every provider type, validates
// a config's credentials and sender, seals credentials for storage and opens them again.
// The API uses it for Save & Test, the worker to build the adapter of a stored config.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/resend"
	"github.com/logicspike/comms/pkg/provider/sandbox"
	"github.com/logicspike/comms/pkg/provider/ses"
	"github.com/logicspike/comms/pkg/provider/smtp"
	"github.com/logicspike/comms/pkg/provider/twilio"
	"github.com/logicspike/comms/pkg/provider/webhook"
	"github.com/logicspike/comms/pkg/secrets"
	"github.com/logicspike/comms/pkg/store"
)

// Adapter is a ready provider: it sends, and describes itself without secrets.
type Adapter interface {
	Send(ctx context.Context, m provider.Message) (provider.Result, error)
	// Mask identifies the account without revealing a secret ("AC12…89ab").
	Mask() string
	// Public is the non-secret sender shown back to the tenant.
	Public() any
}

type kind struct {
	channels []message.Channel
	build    func(provider.Config, provider.Env) (Adapter, error)
}

func adapt[A Adapter](f func(provider.Config, provider.Env) (A, error)) func(provider.Config, provider.Env) (Adapter, error) {
	return func(c provider.Config, e provider.Env) (Adapter, error) {
		a, err := f(c, e)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}

// kinds are the types a tenant can configure. The sandbox is separate: only operators add it.
var kinds = map[string]kind{
	twilio.Type:  {[]message.Channel{message.SMS}, adapt(twilio.New)},
	ses.Type:     {[]message.Channel{message.Email}, adapt(ses.New)},
	smtp.Type:    {[]message.Channel{message.Email}, adapt(smtp.New)},
	resend.Type:  {[]message.Channel{message.Email}, adapt(resend.New)},
	webhook.Type: {[]message.Channel{message.SMS, message.Email}, adapt(webhook.New)},
}

// Types lists the provider types a tenant may configure.
func Types() []string {
	out := make([]string, 0, len(kinds))
	for t := range kinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Channels lists the channels a type can send, or nil for an unknown type.
func Channels(typ string) []message.Channel { return kinds[typ].channels }

// Registry builds adapters with one key ring and one environment.
type Registry struct {
	ring    *secrets.Ring
	env     provider.Env
	sandbox *sandbox.Recorder
}

// New returns a registry; rec (may be nil) records what sandbox configs receive.
func New(ring *secrets.Ring, env provider.Env, rec *sandbox.Recorder) *Registry {
	return &Registry{ring: ring, env: env, sandbox: rec}
}

// Ring is the key ring.
func (r *Registry) Ring() *secrets.Ring { return r.ring }

// Build validates cfg (credentials in the clear) and returns its adapter. Invalid fields come
// back as a *message.ValidationError naming each one.
func (r *Registry) Build(cfg provider.Config) (Adapter, error) {
	k, ok := kinds[cfg.Type]
	if !ok {
		return nil, &message.ValidationError{Fields: []message.FieldError{{Field: "type", Message: "must be one of " + fmt.Sprint(Types())}}}
	}
	return k.build(cfg, r.env)
}

// AAD is the additional data a config's ciphertext is bound to: moved to another tenant's row, or
// another config's, it no longer opens.
func AAD(tenantID, configID string) []byte {
	return []byte("comms/provider_config/v1|" + tenantID + "|" + configID)
}

// Seal encrypts a config's credentials under the ring's newest key.
func (r *Registry) Seal(tenantID, configID string, credentials json.RawMessage) (version string, sealed []byte, err error) {
	return r.ring.Seal(credentials, AAD(tenantID, configID))
}

// Open decrypts a stored config's credentials.
func (r *Registry) Open(p store.ProviderConfig) (provider.Config, error) {
	cfg := provider.Config{ID: p.ID, TenantID: p.TenantID, Type: p.Type, Channel: p.Channel, Sender: p.Sender}
	if p.Sealed == nil {
		return cfg, nil
	}
	creds, err := r.ring.Open(p.KeyVersion, p.Sealed, AAD(p.TenantID, p.ID))
	if err != nil {
		return provider.Config{}, fmt.Errorf("open credentials of %s: %w", p.ID, err)
	}
	cfg.Credentials = creds
	return cfg, nil
}

// Stored returns the adapter of a stored config: the worker's factory.
func (r *Registry) Stored(p store.ProviderConfig) (Adapter, error) {
	if p.Type == sandbox.Type {
		return sandbox.New(p.Settings, r.sandbox)
	}
	cfg, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, errors.New("provider config " + p.ID + " has no credentials")
	}
	a, err := r.Build(cfg)
	if err != nil {
		return nil, fmt.Errorf("provider config %s: %w", p.ID, err)
	}
	return a, nil
}
