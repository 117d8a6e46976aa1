package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

const errorsDoc = "https://github.com/logicspike/comms/blob/main/docs/errors.md"

// A message older than the tenant's history retention answers 404 expired, not a 500 and not a
// plain not-found; an id that never existed within the retention is not-found. Shortening the
// retention makes a kept message's id expire as soon as the purger deletes it.
func TestAMessagePastItsHistoryRetentionIsExpired(t *testing.T) {
	s := start(t)
	tenantID, key := s.Tenant()
	ctx := context.Background()
	var p api.Problem
	old := ids.NewSortableAt(ids.Message, time.Now().Add(-91*24*time.Hour))
	if resp := s.Do("GET", "/v1/messages/"+old, key, nil, nil, &p); resp.StatusCode != 404 || p.Type != errorsDoc+"#expired" {
		t.Fatalf("a 91-day-old id: %d %+v", resp.StatusCode, p)
	}
	if resp := s.Do("GET", "/v1/messages/"+ids.NewSortable(ids.Message), key, nil, nil, &p); resp.StatusCode != 404 || p.Type != errorsDoc+"#not-found" {
		t.Fatalf("an id that never existed: %d %+v", resp.StatusCode, p)
	}
	id := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "hi"})
	if resp := s.Do("GET", "/v1/messages/"+id, key, nil, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("a message within its retention: %d", resp.StatusCode)
	}
	// 8 days old under a 7-day retention (as an admin would set it), once the purger went by.
	week := int64(7 * 86400)
	if _, err := s.Store.UpdateTenant(ctx, tenantID, domain.TenantPatch{HistoryRetentionSeconds: &week}); err != nil {
		t.Fatal(err)
	}
	var settings api.Tenant
	if resp := s.Do("GET", "/v1/settings", key, nil, nil, &settings); resp.StatusCode != 200 || settings.HistoryRetentionSeconds != week ||
		settings.AuditRetentionSeconds != 400*86400 || settings.ContentRetentionSeconds != 30*86400 || settings.ID != tenantID {
		t.Fatalf("settings: %d %+v", resp.StatusCode, settings)
	}
	eightDays := ids.NewSortableAt(ids.Message, time.Now().Add(-8*24*time.Hour))
	if resp := s.Do("GET", "/v1/messages/"+eightDays, key, nil, nil, &p); resp.StatusCode != 404 || p.Type != errorsDoc+"#expired" {
		t.Fatalf("an 8-day-old id under a 7-day retention: %d %+v", resp.StatusCode, p)
	}
}

// A message whose week has no partition (the workers' partition loop has not run for weeks) is
// refused with 503 and a Retry-After, and nothing of it is kept; retried with the same
// Idempotency-Key once the week is made (`commsctl partitions create`), it is accepted.
func TestAMessageWhoseWeekHasNoPartitionIsRefusedUntilTheWeekIsMade(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	ctx := context.Background()
	now := time.Now().UTC()
	week := now.Truncate(24*time.Hour).AddDate(0, 0, -(int(now.Weekday())+6)%7).Format("20060102")
	if _, err := s.Pool.Exec(ctx, `DROP TABLE communication.message_logs_p`+week); err != nil {
		t.Fatal(err)
	}
	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "hi"}
	headers := map[string]string{"Idempotency-Key": "no-week"}
	var p api.Problem
	resp := s.Do("POST", "/v1/messages", key, req, headers, &p)
	if resp.StatusCode != 503 || p.Type != errorsDoc+"#unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a message with no partition for its week: %d Retry-After %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), p)
	}
	var kept int
	if err := s.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM communication.message_logs) + (SELECT count(*) FROM communication.message_events)
		+ (SELECT count(*) FROM communication.idempotency_keys)`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != 0 {
		t.Fatalf("the refused message left %d rows", kept)
	}
	if _, err := s.Store.CreatePartitions(ctx, now, now); err != nil {
		t.Fatal(err)
	}
	var accepted struct{ ID string }
	if resp := s.Do("POST", "/v1/messages", key, req, headers, &accepted); resp.StatusCode != 202 || accepted.ID == "" {
		t.Fatalf("retried once the week is made: %d %+v", resp.StatusCode, accepted)
	}
}
