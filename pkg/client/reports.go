package client

import (
	"context"
	"net/http"
	"time"
)

// GetTimeseries returns delivery counts per hour or day (GET /v1/analytics/timeseries).
func (c *Client) GetTimeseries(ctx context.Context, p GetTimeseriesParams) (Timeseries, error) {
	var out Timeseries
	err := c.Do(ctx, http.MethodGet, "/v1/analytics/timeseries"+query(p), nil, &out)
	return out, err
}

// ProviderErrors is the answer of GetProviderErrors.
type ProviderErrors struct {
	From    time.Time            `json:"from"`
	To      time.Time            `json:"to"`
	Channel string               `json:"channel,omitempty"`
	Errors  []ProviderErrorCount `json:"errors"`
}

// GetProviderErrors counts provider errors by config and normalized code, most frequent first
// (GET /v1/analytics/provider-errors).
func (c *Client) GetProviderErrors(ctx context.Context, p GetProviderErrorsParams) (ProviderErrors, error) {
	var out ProviderErrors
	err := c.Do(ctx, http.MethodGet, "/v1/analytics/provider-errors"+query(p), nil, &out)
	return out, err
}

// ListSuppressions returns a page of the suppression list, newest first (GET /v1/suppressions).
func (c *Client) ListSuppressions(ctx context.Context, p ListSuppressionsParams) (Page[Suppression], error) {
	var out Page[Suppression]
	err := c.Do(ctx, http.MethodGet, "/v1/suppressions"+query(p), nil, &out)
	return out, err
}

// AddSuppression stops sends to an address on a channel (POST /v1/suppressions).
func (c *Client) AddSuppression(ctx context.Context, in SuppressionInput) (Suppression, error) {
	var out Suppression
	err := c.Do(ctx, http.MethodPost, "/v1/suppressions", in, &out)
	return out, err
}

// DeleteSuppression lets sends to the address through again
// (DELETE /v1/suppressions/{channel}/{recipient}).
func (c *Client) DeleteSuppression(ctx context.Context, channel, recipient string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/suppressions/"+esc(channel)+"/"+esc(recipient), nil, nil)
}

// GetUsage returns usage and cost by day, month, channel, provider, template or category
// (GET /v1/usage).
func (c *Client) GetUsage(ctx context.Context, p GetUsageParams) (Usage, error) {
	var out Usage
	err := c.Do(ctx, http.MethodGet, "/v1/usage"+query(p), nil, &out)
	return out, err
}

// ExportUsage returns a month's billing export as CSV (GET /v1/usage/export).
func (c *Client) ExportUsage(ctx context.Context, p ExportUsageParams) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/v1/usage/export"+query(p), nil, &out)
	return out, err
}

// GetQuota returns this month's quota of each limited channel (GET /v1/quota).
func (c *Client) GetQuota(ctx context.Context) ([]QuotaState, error) {
	var out Page[QuotaState]
	err := c.Do(ctx, http.MethodGet, "/v1/quota", nil, &out)
	return out.Data, err
}

// ListAudit returns a page of the tenant's audit log, newest first (GET /v1/audit).
func (c *Client) ListAudit(ctx context.Context, p ListAuditParams) (Page[AuditEntry], error) {
	var out Page[AuditEntry]
	err := c.Do(ctx, http.MethodGet, "/v1/audit"+query(p), nil, &out)
	return out, err
}

// CreateErasure erases a person from the tenant's history (POST /v1/erasures); it runs in the
// background: GetErasure shows its progress.
func (c *Client) CreateErasure(ctx context.Context, recipient string) (Erasure, error) {
	var out Erasure
	err := c.Do(ctx, http.MethodPost, "/v1/erasures", ErasureInput{Recipient: recipient}, &out)
	return out, err
}

// ListErasures returns a page of the tenant's erasures, newest first (GET /v1/erasures); with
// p.Recipient, that person's.
func (c *Client) ListErasures(ctx context.Context, p ListErasuresParams) (Page[Erasure], error) {
	var out Page[Erasure]
	err := c.Do(ctx, http.MethodGet, "/v1/erasures"+query(p), nil, &out)
	return out, err
}

// GetErasure returns an erasure's progress and counts (GET /v1/erasures/{id}).
func (c *Client) GetErasure(ctx context.Context, id string) (Erasure, error) {
	var out Erasure
	err := c.Do(ctx, http.MethodGet, "/v1/erasures/"+esc(id), nil, &out)
	return out, err
}
