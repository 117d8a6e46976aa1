package db

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Actor is who makes the changes of a request, for the audit log (docs/audit.md).
type Actor struct {
	Kind      string `json:"kind"` // tenant, service, admin, cli, or recipient (their own unsubscribe link)
	ID        string `json:"id"`   // the API key id, the OS user, or the person (recipient:<id>, address:<hash>)
	TenantID  string `json:"tenant_id,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

type actorKey struct{}

// WithActor makes every statement run with ctx on a pool from Open carry a: the audit triggers
// record it with each change, in the change's own transaction.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns ctx's actor, if any.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// actorSetting keeps each connection's comms.actor equal to the actor of the context that
// acquired it: set when an acquirer has one, cleared when the next has none. Only a change of
// actor costs a statement, so the service's own work (no actor) pays nothing. A failure to set it
// destroys the connection rather than run a statement under another actor.
type actorSetting struct {
	mu  sync.Mutex
	has map[*pgx.Conn]string
}

// Install adds the hooks to cfg.
func (a *actorSetting) Install(cfg *pgxpool.Config) {
	a.has = map[*pgx.Conn]string{}
	prev := cfg.BeforeClose
	cfg.BeforeClose = func(c *pgx.Conn) {
		a.mu.Lock()
		delete(a.has, c)
		a.mu.Unlock()
		if prev != nil {
			prev(c)
		}
	}
	cfg.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		want := ""
		if actor, ok := ActorFrom(ctx); ok {
			b, _ := json.Marshal(actor)
			want = string(b)
		}
		a.mu.Lock()
		have := a.has[c]
		a.mu.Unlock()
		if want == have {
			return true, nil
		}
		if _, err := c.Exec(ctx, `SELECT set_config('comms.actor', $1, false)`, want); err != nil {
			return false, err
		}
		a.mu.Lock()
		a.has[c] = want
		a.mu.Unlock()
		return true, nil
	}
}

// Configure applies the service's pool settings to cfg: the audit actor hooks.
func Configure(cfg *pgxpool.Config) {
	(&actorSetting{}).Install(cfg)
}
