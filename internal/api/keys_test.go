package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

type createdKey struct {
	APIKey api.APIKey `json:"api_key"`
	Secret string     `json:"secret"`
}

// A tenant creates a key (shown once, stored only as a hash), sends with it, sees when it was
// last used, and revokes it, after which it is refused.
func TestTenantsManageTheirOwnKeys(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tenant, key := s.Tenant()
	var k createdKey
	exp := time.Now().Add(24 * time.Hour)
	if resp := s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "ci", "expires_at": exp}, nil, &k); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	if k.APIKey.Kind != domain.KindTenant || k.APIKey.TenantID != tenant || k.Secret == "" || k.APIKey.ExpiresAt == nil || k.APIKey.LastUsedAt != nil {
		t.Fatalf("created %+v", k)
	}
	var stored []byte
	if err := s.Pool.QueryRow(context.Background(), `SELECT key_hash FROM communication.api_keys WHERE id = $1`, k.APIKey.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if string(stored) == k.Secret || len(stored) != 32 {
		t.Fatalf("the key is stored as %d bytes, not its SHA-256", len(stored))
	}

	// Used: last_used_at appears once the API writes its uses (once a minute; now in the test).
	before := time.Now().Add(-time.Second)
	s.Send(k.Secret, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "hi"})
	s.APIServer.FlushKeyUses(context.Background())
	var list struct{ Data []api.APIKey }
	s.Do("GET", "/v1/api-keys", key, nil, nil, &list)
	var mine *api.APIKey
	for i := range list.Data {
		if list.Data[i].ID == k.APIKey.ID {
			mine = &list.Data[i]
		}
	}
	if len(list.Data) != 2 || mine == nil || mine.LastUsedAt == nil || mine.LastUsedAt.Before(before) {
		t.Fatalf("listed %+v", list.Data)
	}

	var revoked api.APIKey
	if resp := s.Do("DELETE", "/v1/api-keys/"+k.APIKey.ID, key, nil, nil, &revoked); resp.StatusCode != 200 || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %d %+v", resp.StatusCode, revoked)
	}
	if resp := s.Do("GET", "/v1/api-keys", k.Secret, nil, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked key answered %d", resp.StatusCode)
	}
}

// A tenant cannot see or revoke another tenant's keys, nor the platform's service and admin
// keys, and what it creates is always a tenant key of its own.
func TestTenantKeysStayWithinTheTenant(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, keyA := s.Tenant()
	tenantB, keyB := s.Tenant()
	var b createdKey
	s.Do("POST", "/v1/api-keys", keyB, map[string]any{"name": "b"}, nil, &b)
	service, _, err := s.Store.CreateAPIKey(context.Background(), domain.KindService, "", "login service", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{b.APIKey.ID, service.ID} {
		if resp := s.Do("DELETE", "/v1/api-keys/"+id, keyA, nil, nil, nil); resp.StatusCode != 404 {
			t.Errorf("tenant A revoking %s: %d", id, resp.StatusCode)
		}
	}
	var list struct{ Data []api.APIKey }
	s.Do("GET", "/v1/api-keys", keyA, nil, nil, &list)
	for _, k := range list.Data {
		if k.TenantID == tenantB || k.Kind != domain.KindTenant {
			t.Errorf("tenant A lists %+v", k)
		}
	}
	var p struct{ Errors []message.FieldError }
	if resp := s.Do("POST", "/v1/api-keys", keyA, map[string]any{"name": "x", "kind": "admin"}, nil, &p); resp.StatusCode != 422 || len(p.Errors) == 0 || p.Errors[0].Field != "kind" {
		t.Errorf("asking for an admin key: %d %+v", resp.StatusCode, p)
	}
	if resp := s.Do("POST", "/v1/api-keys", keyA, map[string]any{"name": ""}, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "name" {
		t.Errorf("a nameless key: %d %+v", resp.StatusCode, p)
	}
	if resp := s.Do("GET", "/v1/api-keys", b.Secret, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("B's own key was touched: %d", resp.StatusCode)
	}
}

// Keys are only as strong as their maker: a service key (which acts for every tenant) cannot
// create, list or revoke a tenant's keys, and a key made by a key that is later revoked says so
// in the audit log.
func TestServiceKeysCannotManageTenantKeys(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tenant, key := s.Tenant()
	_, service, err := s.Store.CreateAPIKey(context.Background(), domain.KindService, "", "billing service", nil)
	if err != nil {
		t.Fatal(err)
	}
	var made createdKey
	if resp := s.Do("POST", "/v1/api-keys", key, map[string]any{"name": "made by the first"}, nil, &made); resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	as := map[string]string{"X-Tenant-Id": tenant}
	for _, c := range []struct{ method, path string }{{"POST", "/v1/api-keys"}, {"GET", "/v1/api-keys"}, {"DELETE", "/v1/api-keys/" + made.APIKey.ID}} {
		var p struct{ Type, Detail string }
		var body any
		if c.method == "POST" {
			body = map[string]any{"name": "minted"}
		}
		if resp := s.Do(c.method, c.path, service, body, as, &p); resp.StatusCode != http.StatusForbidden || !strings.Contains(p.Detail, "service key") {
			t.Errorf("a service key on %s %s: %d %+v, want 403 saying why", c.method, c.path, resp.StatusCode, p)
		}
	}
	var list struct{ Data []api.APIKey }
	s.Do("GET", "/v1/api-keys", key, nil, nil, &list)
	if len(list.Data) != 2 {
		t.Fatalf("the tenant has %d keys, want its own 2", len(list.Data))
	}

	// The first key is revoked (by the one it made): the made key's audit says its maker went.
	var creator api.APIKey
	for _, k := range list.Data {
		if k.ID != made.APIKey.ID {
			creator = k
		}
	}
	if resp := s.Do("DELETE", "/v1/api-keys/"+creator.ID, made.Secret, nil, nil, &api.APIKey{}); resp.StatusCode != 200 {
		t.Fatalf("revoke the creator: %d", resp.StatusCode)
	}
	var audit struct {
		Data []struct {
			Action string              `json:"action"`
			Target struct{ ID string } `json:"target"`
			After  map[string]any      `json:"after"`
		} `json:"data"`
	}
	s.Do("GET", "/v1/audit?limit=200", made.Secret, nil, nil, &audit)
	found := false
	for _, e := range audit.Data {
		if e.Action == "api_key.creator_revoked" {
			found = e.After["created_by"] == creator.ID
		}
	}
	if !found {
		t.Errorf("no api_key.creator_revoked entry naming %s: %+v", creator.ID, audit.Data)
	}
}
