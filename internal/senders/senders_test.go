package senders_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/invalidate"
	"github.com/logicspike/comms/internal/senders"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	_ "github.com/logicspike/comms/pkg/provider/all"
)

// A from is allowed by the configs a message may route through, as the worker routes it: the
// tenant's own, and the system default only for the kinds the tenant falls back with. A config
// change announced by another process reaches this one's answers through the notice, long
// before its entry would expire.
func TestAFromIsCheckedAgainstTheConfigsAMessageMayRouteThrough(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := store.New(testenv.DB(t))
	rdb, prefix := testenv.Redis(t)
	c := senders.New(st, rdb, prefix, time.Hour, stacktest.Logger())
	go c.Run(ctx)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if subs, _ := rdb.PubSubNumSub(ctx, prefix+invalidate.Channel).Result(); subs[prefix+invalidate.Channel] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the checker did not subscribe")
		}
	}
	create := func(tenantID, sender string) {
		t.Helper()
		if _, err := st.CreateProviderConfig(ctx, tenantID, domain.ProviderConfig{ID: ids.New(ids.Provider), Type: "ses", Name: "ses " + ids.Random(4),
			Channel: message.Email, Sender: json.RawMessage(sender), Enabled: true, Priority: 1}); err != nil {
			t.Fatal(err)
		}
	}
	allows := func(tenantID string, kind message.Category, from string) bool {
		t.Helper()
		ok, err := c.Allows(ctx, tenantID, message.Email, kind, from)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	create("", `{"from": "noreply@platform.example"}`)
	own, err := st.CreateTenant(ctx, domain.NewTenant{Name: "own only"})
	if err != nil {
		t.Fatal(err)
	}
	falls, err := st.CreateTenant(ctx, domain.NewTenant{Name: "falls back", AllowSystemFallback: true})
	if err != nil {
		t.Fatal(err)
	}
	if !allows(own.ID, message.Transactional, "") {
		t.Fatal("no from at all was refused")
	}
	if allows(own.ID, message.Transactional, "a@platform.example") {
		t.Fatal("a tenant that never falls back may send from the system default's domain")
	}
	if !allows(falls.ID, message.Transactional, "a@platform.example") || allows(falls.ID, message.Marketing, "a@platform.example") {
		t.Fatal("a tenant falling back for transactional messages only: wrong answer for one kind")
	}

	if allows(own.ID, message.Marketing, "news@acme.example") {
		t.Fatal("a tenant without configs may send from its domain")
	}
	create(own.ID, `{"from": "Acme <noreply@acme.example>", "domains": ["news.acme.example"]}`)
	if allows(own.ID, message.Marketing, "news@acme.example") {
		t.Fatal("the entry was read again before it expired, without a notice: the test proves nothing")
	}
	invalidate.NewNotifier(rdb, prefix, stacktest.Logger()).Changed(ctx, own.ID)
	for deadline := time.Now().Add(5 * time.Second); !allows(own.ID, message.Marketing, "news@acme.example"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the announced change did not reach the checker")
		}
	}
	if !allows(own.ID, message.Marketing, "hello@news.acme.example") || allows(own.ID, message.Marketing, "x@other.example") {
		t.Fatal("the tenant's config's listed domain")
	}
}
