package api_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/stacktest"
	"github.com/logicspike/comms/pkg/api"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/ratelimit"
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
