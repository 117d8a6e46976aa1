package api_test

import (
	"testing"

	"github.com/logicspike/comms/internal/api"
)

// A plan's retention defaults are taken by a tenant created on it and by one moved to it; a
// retention the same change names wins; a plan that sets none leaves a moved tenant's own.
func TestPlansSetRetentionDefaults(t *testing.T) {
	s := start(t)
	const day = 86400
	var p api.Problem
	for _, c := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"Pro%20Plan", map[string]any{}, "name"},
		{"pro", map[string]any{"history_retention_seconds": 10}, "history_retention_seconds"},
		{"pro", map[string]any{"audit_retention_seconds": day}, "audit_retention_seconds"},
	} {
		if resp := s.Do("PUT", "/admin/plans/"+c.name, s.AdminKey, c.body, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("PUT %s %v: %d %+v, want 422 naming %s", c.name, c.body, resp.StatusCode, p.Errors, c.field)
		}
	}
	var plan api.Plan
	if resp := s.Do("PUT", "/admin/plans/pro", s.AdminKey, map[string]any{"history_retention_seconds": 180 * day, "audit_retention_seconds": 730 * day}, nil, &plan); resp.StatusCode != 200 ||
		plan.HistoryRetentionSeconds == nil || *plan.HistoryRetentionSeconds != 180*day || plan.ContentRetentionSeconds != nil {
		t.Fatalf("put pro: %d %+v", resp.StatusCode, plan)
	}
	if resp := s.Do("PUT", "/admin/plans/basic", s.AdminKey, map[string]any{"content_retention_seconds": 0}, nil, nil); resp.StatusCode != 200 {
		t.Fatalf("put basic: %d", resp.StatusCode)
	}
	var tn api.Tenant
	if resp := s.Do("POST", "/admin/tenants", s.AdminKey, map[string]any{"name": "on pro", "plan": "pro"}, nil, &tn); resp.StatusCode != 201 ||
		tn.HistoryRetentionSeconds != 180*day || tn.AuditRetentionSeconds != 730*day || tn.ContentRetentionSeconds != 30*day {
		t.Fatalf("created on pro: %d %+v", resp.StatusCode, tn)
	}
	id := tn.ID
	patch := func(body map[string]any) {
		t.Helper()
		tn = api.Tenant{}
		if resp := s.Do("PATCH", "/admin/tenants/"+id, s.AdminKey, body, nil, &tn); resp.StatusCode != 200 {
			t.Fatalf("PATCH %v: %d", body, resp.StatusCode)
		}
	}
	patch(map[string]any{"plan": "free"}) // no such plan row: the tenant keeps its own
	if tn.HistoryRetentionSeconds != 180*day || tn.Plan != "free" {
		t.Fatalf("moved to free: %+v", tn)
	}
	patch(map[string]any{"plan": "basic"}) // sets content only
	if tn.ContentRetentionSeconds != 0 || tn.HistoryRetentionSeconds != 180*day {
		t.Fatalf("moved to basic: %+v", tn)
	}
	patch(map[string]any{"plan": "pro", "history_retention_seconds": 7 * day}) // the change's own wins
	if tn.HistoryRetentionSeconds != 7*day || tn.AuditRetentionSeconds != 730*day {
		t.Fatalf("moved to pro with its own history retention: %+v", tn)
	}
	var list struct{ Data []api.Plan }
	if resp := s.Do("GET", "/admin/plans", s.AdminKey, nil, nil, &list); resp.StatusCode != 200 || len(list.Data) != 2 || list.Data[0].Name != "basic" {
		t.Fatalf("plans: %d %+v", resp.StatusCode, list.Data)
	}
}
