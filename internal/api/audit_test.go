package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/provider"
)

// auditStep is one request a changing route answers: its pattern, whose key calls it, and the
// request, whose path and body may use the ids earlier steps made ({provider}, {endpoint}, ...).
type auditStep struct {
	pattern, as, path string
	body              any
	capture           string // the answer's "id" is kept under this name
}

// Every route that changes something leaves an audit row naming the caller's key and the
// request id, written with the change. The test walks the route table: a new changing route
// without a step here fails, so it cannot ship unaudited by accident.
func TestEveryChangingRouteIsAudited(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	tid, key := s.Tenant()
	twilio := map[string]any{"type": "twilio", "name": "tw", "channel": "sms", "test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken}, "sender": map[string]any{"from": "+14155550100"}}
	steps := []auditStep{
		{pattern: "POST /admin/tenants", as: "admin", path: "/admin/tenants", body: map[string]any{"name": "audited"}, capture: "tenant"},
		{pattern: "PATCH /admin/tenants/{id}", as: "admin", path: "/admin/tenants/" + tid, body: map[string]any{"quotas": map[string]any{"sms": map[string]any{"hard_limit": 1000}}}},
		{pattern: "PUT /admin/plans/{name}", as: "admin", path: "/admin/plans/pro", body: map[string]any{"history_retention_seconds": 15552000}},
		{pattern: "POST /admin/api-keys", as: "admin", path: "/admin/api-keys", body: map[string]any{"kind": "service", "name": "svc"}, capture: "adminkey"},
		{pattern: "DELETE /admin/api-keys/{id}", as: "admin", path: "/admin/api-keys/{adminkey}"},
		{pattern: "POST /admin/providers", as: "admin", path: "/admin/providers", body: map[string]any{"type": "twilio", "name": "sys", "channel": "sms", "test_recipient": "+14155550199",
			"credentials": twilio["credentials"], "sender": twilio["sender"]}, capture: "sysprovider"},
		{pattern: "PATCH /admin/providers/{id}", as: "admin", path: "/admin/providers/{sysprovider}", body: map[string]any{"priority": 5}},
		{pattern: "POST /admin/providers/{id}/test", as: "admin", path: "/admin/providers/{sysprovider}/test", body: map[string]any{"test_recipient": "+14155550199"}},
		{pattern: "DELETE /admin/providers/{id}", as: "admin", path: "/admin/providers/{sysprovider}"},
		{pattern: "POST /admin/dlq/replay", as: "admin", path: "/admin/dlq/replay", body: map[string]any{"filter": map[string]any{"tenant_id": tid}, "dry_run": true}},
		{pattern: "POST /admin/callbacks/unmatched/retry", as: "admin", path: "/admin/callbacks/unmatched/retry"},

		{pattern: "PATCH /v1/settings", path: "/v1/settings", body: map[string]any{"unsubscribe_mailto": "unsubscribe@acme.example"}},
		{pattern: "POST /v1/settings/inbox-secret", path: "/v1/settings/inbox-secret"},
		{pattern: "DELETE /v1/settings/inbox-secret", path: "/v1/settings/inbox-secret"},
		{pattern: "POST /v1/providers", path: "/v1/providers", body: twilio, capture: "provider"},
		{pattern: "PATCH /v1/providers/{id}", path: "/v1/providers/{provider}", body: map[string]any{"name": "renamed", "unit_price": map[string]any{"amount": "0.01", "currency": "USD"}}},
		{pattern: "POST /v1/providers/{id}/test", path: "/v1/providers/{provider}/test", body: map[string]any{"test_recipient": "+14155550199"}},
		{pattern: "DELETE /v1/providers/{id}", path: "/v1/providers/{provider}"},
		{pattern: "POST /v1/api-keys", path: "/v1/api-keys", body: map[string]any{"name": "ci"}, capture: "key"},
		{pattern: "DELETE /v1/api-keys/{id}", path: "/v1/api-keys/{key}"},
		{pattern: "POST /v1/suppressions", path: "/v1/suppressions", body: map[string]any{"channel": "email", "recipient": "x@example.com"}},
		{pattern: "DELETE /v1/suppressions/{channel}/{recipient}", path: "/v1/suppressions/email/x@example.com"},
		{pattern: "POST /v1/erasures", path: "/v1/erasures", body: map[string]any{"recipient": "Gone@Example.com"}},
		{pattern: "PUT /v1/recipients/{id}", path: "/v1/recipients/u_audit", body: map[string]any{"email": "x@example.com", "phone": "+14155550111"}},
		{pattern: "PATCH /v1/recipients/{id}", path: "/v1/recipients/u_audit", body: map[string]any{"phone": "+14155550112"}},
		{pattern: "POST /v1/recipients/{id}/devices", path: "/v1/recipients/u_audit/devices", body: map[string]any{"platform": "fcm", "token": "audited"}, capture: "device"},
		{pattern: "DELETE /v1/recipients/{id}/devices/{device}", path: "/v1/recipients/u_audit/devices/{device}"},
		{pattern: "POST /v1/categories", path: "/v1/categories", body: map[string]any{"key": "news", "name": "News", "default": "in"}},
		{pattern: "PATCH /v1/categories/{key}", path: "/v1/categories/news", body: map[string]any{"name": "Newsletter"}},
		{pattern: "PUT /v1/recipients/{id}/preferences", path: "/v1/recipients/u_audit/preferences", body: map[string]any{"categories": map[string]any{"news": map[string]any{"sms": false}}}},
		{pattern: "PUT /v1/preferences", path: "/v1/preferences?address=x@example.com", body: map[string]any{"categories": map[string]any{"news": map[string]any{"email": false}}}},
		{pattern: "DELETE /v1/categories/{key}", path: "/v1/categories/news"},
		{pattern: "DELETE /v1/recipients/{id}", path: "/v1/recipients/u_audit"},
		{pattern: "POST /v1/templates", path: "/v1/templates", body: map[string]any{"key": "otp", "name": "Login code", "channel": "sms", "variables": json.RawMessage(otpSchema)}},
		{pattern: "PATCH /v1/templates/{key}", path: "/v1/templates/otp", body: map[string]any{"name": "Sign-in code"}},
		{pattern: "POST /v1/templates/{key}/versions", path: "/v1/templates/otp/versions", body: map[string]any{"locale": "en", "text": "Your code is {{code}}"}},
		{pattern: "POST /v1/templates/{key}/versions/{n}/activate", path: "/v1/templates/otp/versions/1/activate"},
		{pattern: "DELETE /v1/templates/{key}", path: "/v1/templates/otp"},
		{pattern: "POST /v1/webhook-endpoints", path: "/v1/webhook-endpoints", body: map[string]any{"url": hook.URL}, capture: "endpoint"},
		{pattern: "PATCH /v1/webhook-endpoints/{id}", path: "/v1/webhook-endpoints/{endpoint}", body: map[string]any{"description": "orders"}},
		{pattern: "POST /v1/webhook-endpoints/{id}/rotate-secret", path: "/v1/webhook-endpoints/{endpoint}/rotate-secret"},
		{pattern: "POST /v1/webhook-endpoints/{id}/test", path: "/v1/webhook-endpoints/{endpoint}/test"},
		{pattern: "POST /v1/webhook-endpoints/{id}/replay", path: "/v1/webhook-endpoints/{endpoint}/replay", body: map[string]any{"since": "2026-01-01T00:00:00Z"}},
		{pattern: "DELETE /v1/webhook-endpoints/{id}", path: "/v1/webhook-endpoints/{endpoint}"},
	}
	covered := map[string]bool{}
	for _, st := range steps {
		covered[st.pattern] = true
	}
	for _, pattern := range api.Routes() {
		if strings.HasPrefix(pattern, "GET ") || api.Unaudited(pattern) || covered[pattern] {
			continue
		}
		t.Errorf("%s changes something but has no step here: add one (or, if it changes nothing an operator must see, to api's unaudited list, with why)", pattern)
	}

	keyIDs := map[string]string{}
	for as, k := range map[string]string{"admin": s.AdminKey, "tenant": key} {
		found, err := s.Store.LookupAPIKey(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		keyIDs[as] = found.ID
	}
	ids := map[string]string{}
	for i, st := range steps {
		path := st.path
		for name, id := range ids {
			path = strings.ReplaceAll(path, "{"+name+"}", id)
		}
		as, k := "tenant", key
		if st.as == "admin" {
			as, k = "admin", s.AdminKey
		}
		reqID := "req-audit-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		var out map[string]any
		resp := s.Do(strings.Fields(st.pattern)[0], path, k, st.body, map[string]string{"X-Request-Id": reqID}, &out)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %v", st.pattern, path, resp.StatusCode, out)
		}
		if resp.Header.Get("X-Request-Id") != reqID {
			t.Fatalf("%s: X-Request-Id answered %q", st.pattern, resp.Header.Get("X-Request-Id"))
		}
		if st.capture != "" {
			id, _ := out["id"].(string)
			if inner, ok := out["api_key"].(map[string]any); ok {
				id, _ = inner["id"].(string)
			}
			ids[st.capture] = id
		}
		var n int
		var actor, kind string
		err := s.Pool.QueryRow(context.Background(), `SELECT count(*), min(actor_id), min(actor_kind) FROM communication.audit_log WHERE request_id = $1`, reqID).Scan(&n, &actor, &kind)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if n == 0 || actor != keyIDs[as] || kind != as {
			t.Errorf("%s: %d audit rows for request %s (actor %q %q, want %q %s)", st.pattern, n, reqID, kind, actor, keyIDs[as], as)
		}
	}

	// Recipients' addresses are in it only as their keyed hash.
	var clear int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.audit_log
		WHERE concat(target_id, before::text, after::text) ILIKE ANY (ARRAY['%x@example.com%', '%gone@example.com%', '%14155550111%', '%14155550112%'])`).Scan(&clear); err != nil || clear > 0 {
		t.Errorf("%d audit rows hold a recipient's address in clear (%v)", clear, err)
	}

	// Reading it: a tenant sees its own entries, an admin everyone's, filtered and paged.
	type page struct {
		Data []struct {
			TenantID string `json:"tenant_id"`
			Action   string `json:"action"`
			Actor    struct{ Kind, ID string }
		} `json:"data"`
		Next string `json:"next_cursor"`
	}
	var mine page
	s.Do("GET", "/v1/audit?limit=200", key, nil, nil, &mine)
	actions := map[string]bool{}
	for _, e := range mine.Data {
		if e.TenantID != tid {
			t.Fatalf("a tenant's audit shows another tenant's entry: %+v", e)
		}
		actions[e.Action] = true
	}
	for _, a := range []string{"tenant.updated", "provider_config.created", "provider_config.tested", "api_key.revoked", "suppression.deleted",
		"template.archived", "template_activation.created", "webhook_endpoint.tested", "webhook_endpoint.deleted",
		"category.created", "category.deleted", "preference.created"} {
		if !actions[a] {
			t.Errorf("the tenant's audit lacks %s: %v", a, actions)
		}
	}
	var revoked page
	s.Do("GET", "/admin/audit?tenant_id="+tid+"&action=api_key.revoked&actor="+keyIDs["tenant"], s.AdminKey, nil, nil, &revoked)
	if len(revoked.Data) != 1 {
		t.Fatalf("admin audit filtered: %+v", revoked)
	}
	var first, second page
	s.Do("GET", "/admin/audit?limit=2", s.AdminKey, nil, nil, &first)
	s.Do("GET", "/admin/audit?limit=2&cursor="+first.Next, s.AdminKey, nil, nil, &second)
	if len(first.Data) != 2 || first.Next == "" || len(second.Data) != 2 || second.Data[0] == first.Data[1] {
		t.Fatalf("pages: %+v then %+v", first, second)
	}
	_, otherKey := s.Tenant()
	var theirs page
	if s.Do("GET", "/v1/audit", otherKey, nil, nil, &theirs); len(theirs.Data) != 0 {
		t.Fatalf("another tenant sees %d entries", len(theirs.Data))
	}
	for q, field := range map[string]string{"?tenant_id=" + tid: "tenant_id", "?from=yesterday": "from", "?limit=0": "limit"} {
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		if resp := s.Do("GET", "/v1/audit"+q, otherKey, nil, nil, &p); resp.StatusCode != 400 || len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Fatalf("%s: %d %+v", q, resp.StatusCode, p)
		}
	}

	// Secrets never reach the log: sealed credentials, key hashes and signing secrets are masked.
	var leaks int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.audit_log
		WHERE (after->>'encrypted_config') NOT IN ('***') OR (after->>'key_hash') NOT IN ('***') OR (after->>'secret_sealed') NOT IN ('***')
		   OR (before->>'encrypted_config') NOT IN ('***') OR after::text LIKE '%' || $1 || '%'`, tw.AuthToken).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 {
		t.Fatalf("%d audit rows carry a secret", leaks)
	}
}

// The audit log is append-only: the service's own connections cannot update, delete or truncate
// it (a trigger refuses, whoever asks), and a role set up as docs/audit.md says is refused by
// its grants as well.
func TestAuditLogIsAppendOnly(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, _ := s.Tenant()
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"name": "renamed"}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("patch: %d", resp.StatusCode)
	}
	ctx := context.Background()
	for _, stmt := range []string{`UPDATE communication.audit_log SET action = 'tenant.forged'`, `DELETE FROM communication.audit_log`, `TRUNCATE communication.audit_log`} {
		if _, err := s.Pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: %v", stmt, err)
		}
	}

	// The service's role as docs/audit.md grants it: it may insert and read, nothing more.
	role := "comms_app_" + strings.ToLower(tid[len(tid)-8:])
	for _, stmt := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE ON SCHEMA communication TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA communication TO ` + role,
		`GRANT USAGE ON ALL SEQUENCES IN SCHEMA communication TO ` + role,
		`REVOKE UPDATE, DELETE, TRUNCATE ON communication.audit_log FROM ` + role,
	} {
		if _, err := s.Pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		_, _ = s.Pool.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = s.Pool.Exec(context.Background(), `DROP ROLE `+role)
	})
	cfg := s.Pool.Config().ConnConfig.Copy()
	cfg.User = role
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE communication.audit_log SET action = 'tenant.forged'`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the service role updated the audit log: %v", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE communication.tenants SET name = 'ok' WHERE id = $1`, tid); err != nil {
		t.Fatalf("the service role cannot change its own tables: %v", err)
	}
}
