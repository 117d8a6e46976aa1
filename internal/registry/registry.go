// Package registry turns provider configs into adapters: it knows every provider type, validates
// a config's credentials and sender, seals credentials for storage and opens them again.
// The API uses it for Save & Test, the worker to build the adapter of a stored config.
package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	_ "github.com/logicspike/comms/pkg/provider/all" // every adapter registers itself
	"github.com/logicspike/comms/pkg/provider/sandbox"
)

// Types lists the provider types a tenant may configure.
func Types() []string {
	var out []string
	for _, r := range provider.Registrations() {
		if !r.OperatorOnly {
			out = append(out, r.Type)
		}
	}
	return out
}

// Channels lists the channels a tenant-configurable type can send, or nil for any other type.
func Channels(typ string) []message.Channel {
	if r, ok := provider.Lookup(typ); ok && !r.OperatorOnly {
		return r.Channels
	}
	return nil
}

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
func (r *Registry) Build(cfg provider.Config) (provider.Adapter, error) {
	k, ok := provider.Lookup(cfg.Type)
	if !ok || k.OperatorOnly {
		return nil, &message.ValidationError{Fields: []message.FieldError{{Field: "type", Message: "must be one of " + fmt.Sprint(Types())}}}
	}
	return k.New(cfg, r.env)
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
func (r *Registry) Open(p domain.ProviderConfig) (provider.Config, error) {
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
func (r *Registry) Stored(p domain.ProviderConfig) (provider.Adapter, error) {
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

// InboundURL is where the provider of p should send the messages people write to its numbers
// (the receiver's /webhooks/{type}/{id}/inbound under COMMS_PUBLIC_WEBHOOK_URL); "" when its
// type takes none, or no public URL is set.
func (r *Registry) InboundURL(p domain.ProviderConfig) string {
	if r.env.PublicWebhookURL == "" {
		return ""
	}
	for _, k := range provider.Registrations() {
		if k.Type != p.Type || k.Callbacks == nil {
			continue
		}
		if c, err := k.Callbacks(r.env); err == nil {
			if _, ok := c.(provider.InboundReceiver); ok {
				return strings.TrimRight(r.env.PublicWebhookURL, "/") + "/webhooks/" + p.Type + "/" + p.ID + "/inbound"
			}
		}
	}
	return ""
}

// Callbacks returns the callback handler of every type that calls back, by type: the receiver's
// routes.
func (r *Registry) Callbacks() (map[string]provider.Callbacks, error) {
	out := map[string]provider.Callbacks{}
	for _, k := range provider.Registrations() {
		if k.Callbacks == nil {
			continue
		}
		c, err := k.Callbacks(r.env)
		if err != nil {
			return nil, fmt.Errorf("%s callbacks: %w", k.Type, err)
		}
		out[k.Type] = c
	}
	return out, nil
}
