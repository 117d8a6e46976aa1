package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/logicspike/comms/internal/platform/metrics"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

type quotaList struct {
	Data []struct {
		Channel   string `json:"channel"`
		SoftLimit int64  `json:"soft_limit"`
		Limit     int64  `json:"hard_limit"`
		Used      int64  `json:"used"`
		Remaining int64  `json:"remaining"`
	} `json:"data"`
}

func setQuota(t *testing.T, s *stacktest.Stack, tenantID string, quotas map[string]any) {
	t.Helper()
	if resp := s.Do("PATCH", "/admin/tenants/"+tenantID, s.AdminKey, map[string]any{"quotas": quotas}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("set quotas: %d", resp.StatusCode)
	}
}

func quotaEvents(t *testing.T, s *stacktest.Stack, tenantID string) map[string]int {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT type FROM communication.account_events WHERE tenant_id = $1 AND type LIKE 'comms.quota.%'`, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		out[typ]++
	}
	return out
}

// 64 senders race at the limit: exactly the quota is accepted, the rest get 429 quota-exceeded
// with the limit, the use and the reset time, nothing more is recorded, the warning and the
// exceeded events are each recorded once, and another tenant sends on.
func TestQuotaHoldsUnder64ConcurrentSenders(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	_, otherKey := s.Tenant()
	const limit = 150
	setQuota(t, s, tid, map[string]any{"email": map[string]any{"hard_limit": limit}})

	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var sample map[string]any
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var body map[string]any
				resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.Email, To: fmt.Sprintf("u%d.%d@example.com", g, i), Subject: "s", Text: "t"}, nil, &body)
				switch resp.StatusCode {
				case http.StatusAccepted:
					accepted.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
					once.Do(func() { sample = body })
					return
				default:
					t.Errorf("send: %d %v", resp.StatusCode, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	var stored int64
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM communication.message_logs WHERE tenant_id = $1`, tid).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if accepted.Load() != limit || stored != limit || refused.Load() != 64 {
		t.Fatalf("accepted %d, stored %d, refused %d; the quota is %d", accepted.Load(), stored, refused.Load(), limit)
	}
	// What the QuotaExhausted alert reads (deploy/prometheus): one per refusal, this tenant's.
	if n := testutil.ToFloat64(metrics.QuotaRefused.WithLabelValues(tid, "email")); n != 64 {
		t.Errorf("comms_quota_refused_total for the tenant is %v, want 64", n)
	}
	q, _ := sample["quota"].(map[string]any)
	if sample["type"] != "https://github.com/logicspike/comms/blob/main/docs/errors.md#quota-exceeded" || q["hard_limit"] != float64(limit) ||
		q["used"] != float64(limit) || q["resets_at"] == nil {
		t.Fatalf("429 body: %v", sample)
	}
	var ql quotaList
	s.Do("GET", "/v1/quota", key, nil, nil, &ql)
	if len(ql.Data) != 1 || ql.Data[0].Used != limit || ql.Data[0].Remaining != 0 || ql.Data[0].SoftLimit != limit*8/10 {
		t.Fatalf("GET /v1/quota: %+v", ql)
	}
	if ev := quotaEvents(t, s, tid); ev["comms.quota.warning"] != 1 || ev["comms.quota.exceeded"] != 1 {
		t.Fatalf("quota events: %v", ev)
	}
	s.Send(otherKey, "", message.Request{Channel: message.Email, To: "a@example.com", Subject: "s", Text: "t"})
	var theirs quotaList
	if s.Do("GET", "/v1/quota", otherKey, nil, nil, &theirs); len(theirs.Data) != 0 {
		t.Fatalf("another tenant's quota: %+v", theirs)
	}
}

// SMS quotas count segments; a batch counts each item and is refused whole when it does not
// fit; a duplicate (same Idempotency-Key) counts nothing; a lost counter starts again from
// PostgreSQL's count; raising the limit lets sends through at once.
func TestQuotaCountsSegmentsBatchItemsAndSurvivesALostCounter(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	tid, key := s.Tenant()
	setQuota(t, s, tid, map[string]any{"sms": map[string]any{"soft_limit": 5, "hard_limit": 10}})
	sms := func(text string) message.Request {
		return message.Request{Channel: message.SMS, To: "+14155550123", Text: text}
	}
	long := fmt.Sprintf("%0200d", 0) // 200 digits: 2 segments
	first := s.Send(key, "k1", sms(long))
	s.Send(key, "k1", sms(long)) // a replay: counts nothing
	batchKeyed := func(n int, idemKey string) *http.Response {
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = map[string]any{"channel": "sms", "to": fmt.Sprintf("+1415555%04d", i), "text": "hi"}
		}
		headers := map[string]string{}
		if idemKey != "" {
			headers["Idempotency-Key"] = idemKey
		}
		return s.Do("POST", "/v1/messages/batch", key, map[string]any{"messages": items}, headers, nil)
	}
	batch := func(n int) int { return batchKeyed(n, "").StatusCode }
	if code := batch(9); code != http.StatusTooManyRequests { // 2 used + 9 > 10
		t.Fatalf("a batch over the quota: %d", code)
	}
	if code := batch(4); code != http.StatusOK { // 6 used
		t.Fatalf("a batch within the quota: %d", code)
	}
	// Redis loses the counter: it starts again from what PostgreSQL recorded.
	s.LoseRedisKeys("quota:*")
	if code := batch(5); code != http.StatusTooManyRequests {
		t.Fatalf("after the counter was lost, 6 used + 5 fit in 10: %d", code)
	}
	if code := batch(4); code != http.StatusOK {
		t.Fatalf("after the counter was lost, 6 used + 4: %d", code)
	}
	var ql quotaList
	if s.Do("GET", "/v1/quota", key, nil, nil, &ql); len(ql.Data) != 1 || ql.Data[0].Used != 10 || ql.Data[0].Channel != "sms" {
		t.Fatalf("quota: %+v", ql)
	}
	// At the limit, a repeat of an accepted request still gets its first answer (the Redis
	// fast path forgotten, so that PostgreSQL's key answers), and a changed body is still refused.
	s.LoseRedisKeys("idem:*")
	var again struct{ ID string }
	if resp := s.Do("POST", "/v1/messages", key, sms(long), map[string]string{"Idempotency-Key": "k1"}, &again); resp.StatusCode != 202 || again.ID != first ||
		resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a repeat at the limit: %d %+v", resp.StatusCode, again)
	}
	if resp := s.Do("POST", "/v1/messages", key, sms("other"), map[string]string{"Idempotency-Key": "k1"}, nil); resp.StatusCode != 422 {
		t.Fatalf("a changed body under a used key at the limit: %d", resp.StatusCode)
	}
	if resp := s.Do("POST", "/v1/messages", key, sms("new"), map[string]string{"Idempotency-Key": "k2"}, nil); resp.StatusCode != 429 {
		t.Fatalf("a new request at the limit: %d", resp.StatusCode)
	}
	setQuota(t, s, tid, map[string]any{"sms": map[string]any{"hard_limit": 11}})
	if code := batchKeyed(1, "b1").StatusCode; code != http.StatusOK {
		t.Fatalf("after the limit was raised: %d", code)
	}
	if resp := batchKeyed(1, "b1"); resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a repeated batch at the limit: %d", resp.StatusCode)
	}
	setQuota(t, s, tid, map[string]any{"sms": nil})
	if code := batch(3); code != http.StatusOK {
		t.Fatalf("after the quota was removed: %d", code)
	}
	for body, field := range map[string]string{`{"quotas": {"fax": {"hard_limit": 1}}}`: "quotas.fax",
		`{"quotas": {"sms": {"soft_limit": 9, "hard_limit": 5}}}`: "quotas.sms.soft_limit", `{"quotas": {"sms": {"hard_limit": -1}}}`: "quotas.sms"} {
		var p struct {
			Errors []message.FieldError `json:"errors"`
		}
		if resp := s.Do("PATCH", "/admin/tenants/"+tid, s.AdminKey, body, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Fatalf("%s: %d %+v", body, resp.StatusCode, p)
		}
	}
}
