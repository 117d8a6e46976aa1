package providerconfig_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/providerconfig"
	"github.com/logicspike/comms/internal/registry"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

func ring(t *testing.T, keys string) *secrets.Ring {
	t.Helper()
	r, err := secrets.ParseRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Rotation is resumable: an interrupted run leaves some configs under the new key and some under
// the old, and the next run finishes exactly the rest. A concurrent edit is never overwritten.
func TestRotationIsResumableAndNeverOverwritesAnEdit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	st := store.New(testenv.DB(t))
	env := provider.Env{TwilioBaseURL: tw.URL}
	v1 := providerconfig.New(st, registry.New(ring(t, stacktest.TestKeys), env, nil), stacktest.Logger(), 0)
	tenant, err := st.CreateTenant(ctx, domain.NewTenant{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var created []domain.ProviderConfig
	for _, name := range []string{"a", "b", "c", "d"} {
		p, _, err := v1.Create(ctx, tenant.ID, providerconfig.Input{Type: "twilio", Name: name, Channel: message.SMS, TestRecipient: "+14155550100",
			Credentials: json.RawMessage(`{"account_sid":"` + tw.AccountSID + `","auth_token":"` + tw.AuthToken + `"}`),
			Sender:      json.RawMessage(`{"from":"+14155550101"}`)})
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, p)
	}
	newKey, _ := secrets.GenerateKey("v2")
	reg2 := registry.New(ring(t, newKey+","+stacktest.TestKeys), env, nil)
	v2 := providerconfig.New(st, reg2, stacktest.Logger(), 0)

	// "Interrupted" run: only the first config was resealed.
	cfg, err := reg2.Open(created[0])
	if err != nil {
		t.Fatal(err)
	}
	ver, sealed, _ := reg2.Seal(tenant.ID, created[0].ID, cfg.Credentials)
	if ok, err := st.Reseal(ctx, created[0].ID, created[0].Sealed, ver, sealed); !ok || err != nil {
		t.Fatalf("reseal: %v %v", ok, err)
	}
	// A rotator holding a stale ciphertext loses cleanly.
	if ok, _ := st.Reseal(ctx, created[0].ID, created[0].Sealed, ver, sealed); ok {
		t.Fatal("reseal over a changed ciphertext succeeded")
	}

	var progress []string
	rep, err := v2.Rotate(ctx, 2, func(done, total int) { progress = append(progress, fmt.Sprintf("%d/%d", done, total)) })
	if err != nil || rep.Resealed != 3 {
		t.Fatalf("rotate: %+v %v", rep, err)
	}
	// Progress after every batch of 2, of the 3 configs still under the old key.
	if got := strings.Join(progress, " "); got != "0/3 2/3 3/3" {
		t.Errorf("progress %q, want 0/3 2/3 3/3", got)
	}
	only2 := registry.New(ring(t, newKey), env, nil)
	all, _ := st.ListProviderConfigs(ctx, tenant.ID)
	for _, p := range all {
		if p.KeyVersion != "v2" {
			t.Fatalf("%s still under %s", p.ID, p.KeyVersion)
		}
		c, err := only2.Open(p)
		if err != nil || !strings.Contains(string(c.Credentials), tw.AuthToken) {
			t.Fatalf("%s does not open under v2 alone: %v", p.ID, err)
		}
	}
	if rep, _ := v2.Rotate(ctx, 2, nil); rep.Resealed != 0 {
		t.Fatalf("second run resealed %d", rep.Resealed)
	}
}
