package rekey_test

import (
	"context"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/rekey"
	"github.com/logicspike/comms/internal/testing/stacktest"
)

// After a rotation the old key can leave the ring: every webhook signing secret and inbox secret,
// and the previous one a rotation of it keeps, opens under the new key alone as the secret the
// tenant was shown. A second run finds nothing to do.
func TestKeyRotationResealsWebhookAndInboxSecrets(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	ctx := context.Background()

	shown := map[string]map[string]bool{} // row id → the secrets the tenant was shown
	var ep api.WebhookEndpointWithSecret
	if resp := s.Do("POST", "/v1/webhook-endpoints", key, map[string]any{"url": "https://hooks.acme.example/comms"}, nil, &ep); resp.StatusCode != 201 {
		t.Fatalf("create the endpoint: %d", resp.StatusCode)
	}
	first := ep.Secret
	if resp := s.Do("POST", "/v1/webhook-endpoints/"+ep.ID+"/rotate-secret", key, nil, nil, &ep); resp.StatusCode != 200 {
		t.Fatalf("rotate the endpoint's secret: %d", resp.StatusCode)
	}
	shown[ep.ID] = map[string]bool{first: true, ep.Secret: true}
	tenantID := ""
	for range 2 {
		var sec api.InboxSecret
		if resp := s.Do("POST", "/v1/settings/inbox-secret", key, nil, nil, &sec); resp.StatusCode != 201 && resp.StatusCode != 200 {
			t.Fatalf("inbox secret: %d", resp.StatusCode)
		}
		if err := s.Pool.QueryRow(ctx, `SELECT tenant_id FROM communication.inbox_secrets`).Scan(&tenantID); err != nil {
			t.Fatal(err)
		}
		if shown[tenantID] == nil {
			shown[tenantID] = map[string]bool{}
		}
		shown[tenantID][sec.Secret] = true
	}

	v2, err := secrets.GenerateKey("v2")
	if err != nil {
		t.Fatal(err)
	}
	both, err := secrets.ParseRing(v2 + "," + stacktest.TestKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range rekey.Kinds {
		if rep, err := rekey.Reseal(ctx, s.Store, both, k, 1); err != nil || rep.Resealed != 1 {
			t.Fatalf("%s: %+v %v, want 1 resealed", k.Name, rep, err)
		}
		if rep, err := rekey.Reseal(ctx, s.Store, both, k, 1); err != nil || rep.Resealed != 0 {
			t.Fatalf("%s again: %+v %v, want nothing to do", k.Name, rep, err)
		}
	}

	onlyV2, err := secrets.ParseRing(v2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range rekey.Kinds {
		rows, err := s.Store.ListSecretsNotUnder(ctx, k.Table, "none", "", 10)
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: %d rows, %v", k.Name, len(rows), err)
		}
		r := rows[0]
		if r.Version != "v2" || r.PreviousVersion != "v2" {
			t.Fatalf("%s: sealed under %s, the previous under %s", k.Name, r.Version, r.PreviousVersion)
		}
		for _, sealed := range [][]byte{r.Sealed, r.PreviousSealed} {
			plain, err := onlyV2.Open("v2", sealed, k.AAD(r))
			if err != nil || !shown[r.ID][string(plain)] {
				t.Fatalf("%s of %s under the new key alone: %v (opens to a secret the tenant was shown: %t)", k.Name, r.ID, err, shown[r.ID][string(plain)])
			}
		}
	}
}
