package client

import (
	"context"
	"net/http"
	"time"
)

// CreateProvider tests the credentials with a real send and stores the config only if the
// provider accepts (POST /v1/providers: Save & Test).
func (c *Client) CreateProvider(ctx context.Context, in ProviderInput) (Provider, error) {
	var out Provider
	err := c.Do(ctx, http.MethodPost, "/v1/providers", in, &out)
	return out, err
}

// ListProviders returns the tenant's provider configs (GET /v1/providers).
func (c *Client) ListProviders(ctx context.Context) ([]Provider, error) {
	var out Page[Provider]
	err := c.Do(ctx, http.MethodGet, "/v1/providers", nil, &out)
	return out.Data, err
}

// GetProvider returns a provider config (GET /v1/providers/{id}).
func (c *Client) GetProvider(ctx context.Context, id string) (Provider, error) {
	var out Provider
	err := c.Do(ctx, http.MethodGet, "/v1/providers/"+esc(id), nil, &out)
	return out, err
}

// UpdateProvider changes a provider config; new credentials are tested first
// (PATCH /v1/providers/{id}).
func (c *Client) UpdateProvider(ctx context.Context, id string, p ProviderPatch) (Provider, error) {
	var out Provider
	err := c.Do(ctx, http.MethodPatch, "/v1/providers/"+esc(id), p, &out)
	return out, err
}

// DeleteProvider removes a provider config (DELETE /v1/providers/{id}).
func (c *Client) DeleteProvider(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/providers/"+esc(id), nil, nil)
}

// TestProvider sends a test message through a stored config to testRecipient
// (POST /v1/providers/{id}/test).
func (c *Client) TestProvider(ctx context.Context, id, testRecipient string) (TestResult, error) {
	var out TestResult
	err := c.Do(ctx, http.MethodPost, "/v1/providers/"+esc(id)+"/test", TestProviderJSONBody{TestRecipient: testRecipient}, &out)
	return out, err
}

// CreateWebhookEndpoint adds an endpoint; the answer holds its signing secret, shown this once
// (POST /v1/webhook-endpoints).
func (c *Client) CreateWebhookEndpoint(ctx context.Context, in WebhookEndpointInput) (WebhookEndpointWithSecret, error) {
	var out WebhookEndpointWithSecret
	err := c.Do(ctx, http.MethodPost, "/v1/webhook-endpoints", in, &out)
	return out, err
}

// ListWebhookEndpoints returns the tenant's endpoints (GET /v1/webhook-endpoints).
func (c *Client) ListWebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	var out Page[WebhookEndpoint]
	err := c.Do(ctx, http.MethodGet, "/v1/webhook-endpoints", nil, &out)
	return out.Data, err
}

// GetWebhookEndpoint returns an endpoint (GET /v1/webhook-endpoints/{id}).
func (c *Client) GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.Do(ctx, http.MethodGet, "/v1/webhook-endpoints/"+esc(id), nil, &out)
	return out, err
}

// UpdateWebhookEndpoint changes an endpoint (PATCH /v1/webhook-endpoints/{id}).
func (c *Client) UpdateWebhookEndpoint(ctx context.Context, id string, p WebhookEndpointPatch) (WebhookEndpoint, error) {
	var out WebhookEndpoint
	err := c.Do(ctx, http.MethodPatch, "/v1/webhook-endpoints/"+esc(id), p, &out)
	return out, err
}

// DeleteWebhookEndpoint removes an endpoint (DELETE /v1/webhook-endpoints/{id}).
func (c *Client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/webhook-endpoints/"+esc(id), nil, nil)
}

// RotateWebhookSecret makes a new signing secret; the old one signs beside it for 24 hours
// (POST /v1/webhook-endpoints/{id}/rotate-secret).
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (WebhookEndpointWithSecret, error) {
	var out WebhookEndpointWithSecret
	err := c.Do(ctx, http.MethodPost, "/v1/webhook-endpoints/"+esc(id)+"/rotate-secret", nil, &out)
	return out, err
}

// TestWebhookEndpoint delivers a comms.webhook.test event to the endpoint now
// (POST /v1/webhook-endpoints/{id}/test).
func (c *Client) TestWebhookEndpoint(ctx context.Context, id string) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := c.Do(ctx, http.MethodPost, "/v1/webhook-endpoints/"+esc(id)+"/test", nil, &out)
	return out, err
}

// ListWebhookDeliveries returns a page of an endpoint's deliveries, newest first
// (GET /v1/webhook-endpoints/{id}/deliveries).
func (c *Client) ListWebhookDeliveries(ctx context.Context, id string, p ListWebhookDeliveriesParams) (Page[WebhookDelivery], error) {
	var out Page[WebhookDelivery]
	err := c.Do(ctx, http.MethodGet, "/v1/webhook-endpoints/"+esc(id)+"/deliveries"+query(p), nil, &out)
	return out, err
}

// ReplayWebhookDeliveries delivers finished deliveries again (POST /v1/webhook-endpoints/{id}/replay).
func (c *Client) ReplayWebhookDeliveries(ctx context.Context, id string, in WebhookReplay) (WebhookReplayResult, error) {
	var out WebhookReplayResult
	err := c.Do(ctx, http.MethodPost, "/v1/webhook-endpoints/"+esc(id)+"/replay", in, &out)
	return out, err
}

// CreatedAPIKey is a new key, and its secret: shown only in this answer.
type CreatedAPIKey struct {
	APIKey APIKey `json:"api_key"`
	Secret string `json:"secret"`
}

// CreateTenantAPIKey makes a key of the caller's tenant (POST /v1/api-keys).
func (c *Client) CreateTenantAPIKey(ctx context.Context, name string, expiresAt time.Time) (CreatedAPIKey, error) {
	var out CreatedAPIKey
	err := c.Do(ctx, http.MethodPost, "/v1/api-keys", CreateTenantAPIKeyJSONBody{Name: name, ExpiresAt: expiresAt}, &out)
	return out, err
}

// ListTenantAPIKeys returns the tenant's keys, without their secrets (GET /v1/api-keys).
func (c *Client) ListTenantAPIKeys(ctx context.Context) ([]APIKey, error) {
	var out Page[APIKey]
	err := c.Do(ctx, http.MethodGet, "/v1/api-keys", nil, &out)
	return out.Data, err
}

// RevokeTenantAPIKey revokes one of the tenant's keys (DELETE /v1/api-keys/{id}).
func (c *Client) RevokeTenantAPIKey(ctx context.Context, id string) (APIKey, error) {
	var out APIKey
	err := c.Do(ctx, http.MethodDelete, "/v1/api-keys/"+esc(id), nil, &out)
	return out, err
}

// GetSettings returns the tenant's own settings: plan, limits, quotas, retention
// (GET /v1/settings).
func (c *Client) GetSettings(ctx context.Context) (Tenant, error) {
	var out Tenant
	err := c.Do(ctx, http.MethodGet, "/v1/settings", nil, &out)
	return out, err
}

// UpdateSettings changes the settings that are the tenant's own (PATCH /v1/settings).
func (c *Client) UpdateSettings(ctx context.Context, p SettingsPatch) (Tenant, error) {
	var out Tenant
	err := c.Do(ctx, http.MethodPatch, "/v1/settings", p, &out)
	return out, err
}

// RotateInboxSecret makes the secret the tenant's backend signs recipient tokens with, shown
// this once (POST /v1/settings/inbox-secret).
func (c *Client) RotateInboxSecret(ctx context.Context) (InboxSecret, error) {
	var out InboxSecret
	err := c.Do(ctx, http.MethodPost, "/v1/settings/inbox-secret", nil, &out)
	return out, err
}

// RemoveInboxSecret removes the inbox secrets: tokens they signed stop working
// (DELETE /v1/settings/inbox-secret).
func (c *Client) RemoveInboxSecret(ctx context.Context) error {
	return c.Do(ctx, http.MethodDelete, "/v1/settings/inbox-secret", nil, nil)
}
