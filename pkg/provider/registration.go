package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/logicspike/comms/pkg/message"
)

// Adapter is a ready provider config: it sends, and describes itself without secrets.
type Adapter interface {
	Send(ctx context.Context, m Message) (Result, error)
	// Mask identifies the account without revealing a secret ("AC12…89ab").
	Mask() string
	// Public is the non-secret sender shown back to the tenant.
	Public() any
}

// Registration is everything the service knows about one provider type. Each adapter package
// registers its own in an init function (as database/sql drivers do); importing
// pkg/provider/all makes every adapter available. The registry's types, the receiver's routes,
// the list of providers whose sends await callbacks, and display names all derive from it.
type Registration struct {
	Type     string // as stored and in callback URLs: "twilio"
	Name     string // as shown to tenants: "Twilio"
	Channels []message.Channel
	// New validates a config (credentials in the clear) and returns its adapter. Invalid fields
	// come back as a *message.ValidationError naming each one.
	New func(Config, Env) (Adapter, error)
	// Callbacks, for a provider that reports delivery events to us, returns what verifies and
	// normalizes them; nil for a provider that does not call back.
	Callbacks func(Env) (Callbacks, error)
	// OperatorOnly types are not offered to tenants (the sandbox); New is nil for them.
	OperatorOnly bool
	// Credentials and Sender are the zero values of the structs a config's credentials and
	// sender decode into (nil: the type takes none). Their fields and form tags (FormFields)
	// make the dashboard's Save & Test form, so a new provider type needs no page code.
	Credentials, Sender any
	// PricedLater: the provider prices a message after sending it, and its adapters are Pricers;
	// a sent message without a price is fetched again later (docs/usage.md#cost).
	PricedLater bool
	// KeptCredentials are fields of the stored credentials that a change of credentials omitting
	// them keeps (Web Push's key pair: browsers subscribed with its public key).
	KeptCredentials []string
}

// Completer is an adapter that completes the credentials it was given (Web Push generates its
// VAPID keys when none are given): what is sealed and stored is Credentials, not the input.
type Completer interface {
	Credentials() json.RawMessage
}

// Validator is an adapter that can have its provider check the credentials without delivering
// anything (FCM's validate_only): Save & Test of a push config given no test device.
type Validator interface {
	Validate(ctx context.Context) error
}

// Pricer fetches the price of a message a provider sent; empty cost means not priced yet.
type Pricer interface {
	Price(ctx context.Context, providerMessageID string) (cost, currency string, err error)
}

var (
	regMu sync.RWMutex
	regs  = map[string]Registration{}
)

// Register makes a provider type known. It panics on a duplicate or incomplete registration:
// both are programming errors found at start-up.
func Register(r Registration) {
	regMu.Lock()
	defer regMu.Unlock()
	if r.Type == "" || r.Name == "" || len(r.Channels) == 0 || (!r.OperatorOnly && (r.New == nil || r.Credentials == nil)) {
		panic(fmt.Sprintf("provider: incomplete registration %+v", r))
	}
	if _, dup := regs[r.Type]; dup {
		panic("provider: " + r.Type + " registered twice")
	}
	regs[r.Type] = r
}

// Lookup returns the registration of typ.
func Lookup(typ string) (Registration, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	r, ok := regs[typ]
	return r, ok
}

// Registrations lists every registered type, by type name.
func Registrations() []Registration {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Registration, 0, len(regs))
	for _, r := range regs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// CallbackTypes lists the types that report delivery events: only their sends are indexed for
// matching callbacks.
func CallbackTypes() []string {
	var out []string
	for _, r := range Registrations() {
		if r.Callbacks != nil {
			out = append(out, r.Type)
		}
	}
	return out
}

// DisplayName is typ's name as shown to tenants, or typ itself when it is not registered.
func DisplayName(typ string) string {
	if r, ok := Lookup(typ); ok {
		return r.Name
	}
	return typ
}

// Build adapts an adapter package's constructor, which returns its own type, to Registration.New.
func Build[A Adapter](f func(Config, Env) (A, error)) func(Config, Env) (Adapter, error) {
	return func(c Config, e Env) (Adapter, error) {
		a, err := f(c, e)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}
