package api_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/platform/ratelimit"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

func TestIntakeRateLimitPerTenant(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	_, other := s.Tenant()
	if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.tenants SET rate_per_second = 0.01, rate_burst = 3 WHERE id = $1`, tid); err != nil {
		t.Fatal(err)
	}
	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"}
	for i := range 3 {
		resp := s.Do("POST", "/v1/messages", key, req, nil, nil)
		if resp.StatusCode != 202 || resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: %d, limit %q remaining %q", i, resp.StatusCode, resp.Header.Get("RateLimit-Limit"), resp.Header.Get("RateLimit-Remaining"))
		}
	}
	var prob api.Problem
	resp := s.Do("POST", "/v1/messages", key, req, nil, &prob)
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != 429 || retryAfter < 50 || resp.Header.Get("RateLimit-Remaining") != "0" || prob.Status != 429 {
		t.Fatalf("over the limit: %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), prob)
	}
	var n int
	_ = s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1`, tid).Scan(&n)
	if n != 3 {
		t.Fatalf("%d messages recorded, want the 3 accepted", n)
	}
	if resp := s.Do("POST", "/v1/messages", other, req, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("another tenant was limited: %d", resp.StatusCode)
	}
}

// Redis down: the limit cannot be checked, and messages are accepted rather than refused.
func TestIntakeRateLimitFailsOpenWithoutRedis(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	s := stacktest.Start(t, stacktest.Options{Limiter: ratelimit.New(dead, "x:")})
	_, key := s.Tenant()
	if resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"}, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

// An admin changes a tenant's rate limit and retry budget; the new limit applies at once.
func TestAdminUpdatesTenantSettings(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{AuthCacheTTL: time.Hour})
	tid, key := s.Tenant()
	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "x"}
	if resp := s.Do("POST", "/v1/messages", key, req, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	var prob api.Problem
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"max_attempts": 0, "status": "paused"}, nil, &prob); resp.StatusCode != 422 || len(prob.Errors) != 2 {
		t.Fatalf("bad patch: %d %+v", resp.StatusCode, prob)
	}
	var got api.Tenant
	resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"rate_per_second": 0.001, "rate_burst": 1, "max_attempts": 3, "max_retry_age_seconds": 3600}, nil, &got)
	if resp.StatusCode != 200 || got.MaxAttempts != 3 || got.MaxRetryAgeSeconds != 3600 || got.RateBurst != 1 {
		t.Fatalf("patch: %d %+v", resp.StatusCode, got)
	}
	// The API's tenant cache (an hour here) was dropped: the new bucket holds one request.
	if resp := s.Do("POST", "/v1/messages", key, req, nil, nil); resp.StatusCode != 202 {
		t.Fatalf("first after: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/messages", key, req, nil, nil); resp.StatusCode != 429 {
		t.Fatalf("second after: %d, want 429", resp.StatusCode)
	}
	if resp := s.Do("PATCH", "/admin/tenants/ten_nope", s.AdminKey, map[string]any{"max_attempts": 2}, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("unknown tenant: %d", resp.StatusCode)
	}
}

// An admin sets how long a tenant's message content is kept: 30 days unless changed, 0 allowed
// (until final), a negative or overlong retention refused naming the field, nothing changed.
func TestAdminSetsContentRetention(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	var got api.Tenant
	if resp := s.Do("POST", "/admin/tenants", s.AdminKey, map[string]any{"name": "kept"}, nil, &got); resp.StatusCode != 201 || got.ContentRetentionSeconds != 30*86400 {
		t.Fatalf("default: %d %d", resp.StatusCode, got.ContentRetentionSeconds)
	}
	tid := got.ID
	for _, bad := range []int64{-1, 3651 * 86400} {
		var prob api.Problem
		resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"content_retention_seconds": bad}, nil, &prob)
		if resp.StatusCode != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "content_retention_seconds" {
			t.Fatalf("retention %d: %d %+v", bad, resp.StatusCode, prob)
		}
	}
	if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, map[string]any{"content_retention_seconds": 0}, nil, &got); resp.StatusCode != 200 || got.ContentRetentionSeconds != 0 {
		t.Fatalf("retention 0: %d %+v", resp.StatusCode, got)
	}
	var audit struct {
		Data []api.AuditEntry `json:"data"`
	}
	s.Do("GET", "/admin/audit?tenant_id="+tid+"&action=tenant.updated", s.AdminKey, nil, nil, &audit)
	if len(audit.Data) == 0 || !strings.Contains(string(audit.Data[0].After), `"content_retention"`) {
		t.Fatalf("the change is not audited: %+v", audit.Data)
	}
}
