package client

import (
	"context"
	"net/http"
)

// Admin calls the operators' API (/admin) with an admin key: tenants, their keys, the system
// default providers, dead letters, unmatched callbacks, plans, every tenant's usage and audit.
type Admin struct{ c *Client }

// NewAdmin returns a client of the admin API at baseURL authenticating with adminKey.
func NewAdmin(baseURL, adminKey string, opts ...Option) *Admin {
	return &Admin{c: New(baseURL, adminKey, opts...)}
}

// Do is Client.Do with the admin key.
func (a *Admin) Do(ctx context.Context, method, path string, in, out any, opts ...CallOption) error {
	return a.c.Do(ctx, method, path, in, out, opts...)
}

// CreateTenant creates a tenant (POST /admin/tenants).
func (a *Admin) CreateTenant(ctx context.Context, in CreateTenantJSONRequestBody) (Tenant, error) {
	var out Tenant
	err := a.c.Do(ctx, http.MethodPost, "/admin/tenants", in, &out)
	return out, err
}

// ListTenants returns a page of tenants (GET /admin/tenants).
func (a *Admin) ListTenants(ctx context.Context, p ListTenantsParams) (Page[Tenant], error) {
	var out Page[Tenant]
	err := a.c.Do(ctx, http.MethodGet, "/admin/tenants"+query(p), nil, &out)
	return out, err
}

// UpdateTenant changes a tenant: plan, limits, quotas, retention, suspension
// (PATCH /admin/tenants/{id}).
func (a *Admin) UpdateTenant(ctx context.Context, id string, p TenantPatch) (Tenant, error) {
	var out Tenant
	err := a.c.Do(ctx, http.MethodPatch, "/admin/tenants/"+esc(id), p, &out)
	return out, err
}

// CreateAPIKey makes a tenant, service or admin key (POST /admin/api-keys); its secret is in
// this answer only.
func (a *Admin) CreateAPIKey(ctx context.Context, in CreateAPIKeyJSONRequestBody) (CreatedAPIKey, error) {
	var out CreatedAPIKey
	err := a.c.Do(ctx, http.MethodPost, "/admin/api-keys", in, &out)
	return out, err
}

// ListAPIKeys returns the keys, a tenant's when p names it (GET /admin/api-keys).
func (a *Admin) ListAPIKeys(ctx context.Context, p ListAPIKeysParams) ([]APIKey, error) {
	var out Page[APIKey]
	err := a.c.Do(ctx, http.MethodGet, "/admin/api-keys"+query(p), nil, &out)
	return out.Data, err
}

// RevokeAPIKey revokes a key (DELETE /admin/api-keys/{id}).
func (a *Admin) RevokeAPIKey(ctx context.Context, id string) (APIKey, error) {
	var out APIKey
	err := a.c.Do(ctx, http.MethodDelete, "/admin/api-keys/"+esc(id), nil, &out)
	return out, err
}

// CreateSystemProvider adds a system default provider, with Save & Test (POST /admin/providers).
func (a *Admin) CreateSystemProvider(ctx context.Context, in ProviderInput) (Provider, error) {
	var out Provider
	err := a.c.Do(ctx, http.MethodPost, "/admin/providers", in, &out)
	return out, err
}

// ListSystemProviders returns the system default providers (GET /admin/providers).
func (a *Admin) ListSystemProviders(ctx context.Context) ([]Provider, error) {
	var out Page[Provider]
	err := a.c.Do(ctx, http.MethodGet, "/admin/providers", nil, &out)
	return out.Data, err
}

// GetSystemProvider returns a system default provider (GET /admin/providers/{id}).
func (a *Admin) GetSystemProvider(ctx context.Context, id string) (Provider, error) {
	var out Provider
	err := a.c.Do(ctx, http.MethodGet, "/admin/providers/"+esc(id), nil, &out)
	return out, err
}

// UpdateSystemProvider changes a system default provider (PATCH /admin/providers/{id}).
func (a *Admin) UpdateSystemProvider(ctx context.Context, id string, p ProviderPatch) (Provider, error) {
	var out Provider
	err := a.c.Do(ctx, http.MethodPatch, "/admin/providers/"+esc(id), p, &out)
	return out, err
}

// DeleteSystemProvider removes a system default provider (DELETE /admin/providers/{id}).
func (a *Admin) DeleteSystemProvider(ctx context.Context, id string) error {
	return a.c.Do(ctx, http.MethodDelete, "/admin/providers/"+esc(id), nil, nil)
}

// TestSystemProvider sends a test message through a system default provider
// (POST /admin/providers/{id}/test).
func (a *Admin) TestSystemProvider(ctx context.Context, id, testRecipient string) (TestResult, error) {
	var out TestResult
	err := a.c.Do(ctx, http.MethodPost, "/admin/providers/"+esc(id)+"/test", TestSystemProviderJSONBody{TestRecipient: testRecipient}, &out)
	return out, err
}

// ListDeadLetters returns a page of the dead-letter queue, newest first (GET /admin/dlq).
func (a *Admin) ListDeadLetters(ctx context.Context, p ListDeadLettersParams) (Page[DeadLetter], error) {
	var out Page[DeadLetter]
	err := a.c.Do(ctx, http.MethodGet, "/admin/dlq"+query(p), nil, &out)
	return out, err
}

// GetDeadLetter returns a dead letter (GET /admin/dlq/{id}).
func (a *Admin) GetDeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	var out DeadLetter
	err := a.c.Do(ctx, http.MethodGet, "/admin/dlq/"+esc(id), nil, &out)
	return out, err
}

// ReplayDeadLetters sends the dead letters a filter selects again, or counts them with dry_run
// (POST /admin/dlq/replay).
func (a *Admin) ReplayDeadLetters(ctx context.Context, in ReplayDeadLettersJSONRequestBody) (Replay, error) {
	var out Replay
	err := a.c.Do(ctx, http.MethodPost, "/admin/dlq/replay", in, &out)
	return out, err
}

// ListReplays returns the replays, newest first (GET /admin/dlq/replays).
func (a *Admin) ListReplays(ctx context.Context) ([]Replay, error) {
	var out Page[Replay]
	err := a.c.Do(ctx, http.MethodGet, "/admin/dlq/replays", nil, &out)
	return out.Data, err
}

// ListUnmatchedCallbacks returns provider callbacks that matched no message
// (GET /admin/callbacks/unmatched).
func (a *Admin) ListUnmatchedCallbacks(ctx context.Context) (Page[UnmatchedCallback], error) {
	var out Page[UnmatchedCallback]
	err := a.c.Do(ctx, http.MethodGet, "/admin/callbacks/unmatched", nil, &out)
	return out, err
}

// RetryUnmatchedCallbacks queues the unmatched callbacks to be matched again and returns how
// many (POST /admin/callbacks/unmatched/retry).
func (a *Admin) RetryUnmatchedCallbacks(ctx context.Context) (int, error) {
	var out struct {
		Queued int `json:"queued"`
	}
	err := a.c.Do(ctx, http.MethodPost, "/admin/callbacks/unmatched/retry", nil, &out)
	return out.Queued, err
}

// ExportAllUsage returns a month's billing export of every tenant, or one, as CSV
// (GET /admin/usage/export).
func (a *Admin) ExportAllUsage(ctx context.Context, p ExportAllUsageParams) ([]byte, error) {
	var out []byte
	err := a.c.Do(ctx, http.MethodGet, "/admin/usage/export"+query(p), nil, &out)
	return out, err
}

// ListAllAudit returns a page of every tenant's audit log, newest first (GET /admin/audit).
func (a *Admin) ListAllAudit(ctx context.Context, p ListAllAuditParams) (Page[AuditEntry], error) {
	var out Page[AuditEntry]
	err := a.c.Do(ctx, http.MethodGet, "/admin/audit"+query(p), nil, &out)
	return out, err
}

// ListPlans returns the plans (GET /admin/plans).
func (a *Admin) ListPlans(ctx context.Context) (Page[Plan], error) {
	var out Page[Plan]
	err := a.c.Do(ctx, http.MethodGet, "/admin/plans", nil, &out)
	return out, err
}

// PutPlan creates or replaces a plan (PUT /admin/plans/{name}).
func (a *Admin) PutPlan(ctx context.Context, name string, in PlanInput) (Plan, error) {
	var out Plan
	err := a.c.Do(ctx, http.MethodPut, "/admin/plans/"+esc(name), in, &out)
	return out, err
}
