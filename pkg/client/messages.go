package client

import (
	"context"
	"net/http"
	"strconv"
)

// SendMessage accepts one message (POST /v1/messages), with an idempotency key (a random one
// unless IdempotencyKey gives it), so that it is safe to retry.
func (c *Client) SendMessage(ctx context.Context, req MessageRequest, opts ...CallOption) (Accepted, error) {
	var out Accepted
	err := c.Do(ctx, http.MethodPost, "/v1/messages", req, &out, withIdempotencyKey(opts)...)
	return out, err
}

// SendBatch accepts up to 1,000 messages at once (POST /v1/messages/batch), each accepted or
// refused on its own, with an idempotency key as SendMessage.
func (c *Client) SendBatch(ctx context.Context, req BatchRequest, opts ...CallOption) (BatchResult, error) {
	var out BatchResult
	err := c.Do(ctx, http.MethodPost, "/v1/messages/batch", req, &out, withIdempotencyKey(opts)...)
	return out, err
}

// ListMessages returns a page of messages, newest first (GET /v1/messages).
func (c *Client) ListMessages(ctx context.Context, p ListMessagesParams) (Page[Message], error) {
	var out Page[Message]
	err := c.Do(ctx, http.MethodGet, "/v1/messages"+query(p), nil, &out)
	return out, err
}

// GetMessage returns a message with its timeline (GET /v1/messages/{id}).
func (c *Client) GetMessage(ctx context.Context, id string) (Message, error) {
	var out Message
	err := c.Do(ctx, http.MethodGet, "/v1/messages/"+esc(id), nil, &out)
	return out, err
}

// CancelMessage cancels a scheduled or queued message (POST /v1/messages/{id}/cancel).
func (c *Client) CancelMessage(ctx context.Context, id string) (Message, error) {
	var out Message
	err := c.Do(ctx, http.MethodPost, "/v1/messages/"+esc(id)+"/cancel", nil, &out)
	return out, err
}

// CreateTemplate creates a template (POST /v1/templates).
func (c *Client) CreateTemplate(ctx context.Context, in TemplateInput) (Template, error) {
	var out Template
	err := c.Do(ctx, http.MethodPost, "/v1/templates", in, &out)
	return out, err
}

// ListTemplates returns a page of templates (GET /v1/templates).
func (c *Client) ListTemplates(ctx context.Context, p ListTemplatesParams) (Page[Template], error) {
	var out Page[Template]
	err := c.Do(ctx, http.MethodGet, "/v1/templates"+query(p), nil, &out)
	return out, err
}

// GetTemplate returns a template (GET /v1/templates/{key}).
func (c *Client) GetTemplate(ctx context.Context, key string) (Template, error) {
	var out Template
	err := c.Do(ctx, http.MethodGet, "/v1/templates/"+esc(key), nil, &out)
	return out, err
}

// UpdateTemplate changes a template's settings (PATCH /v1/templates/{key}).
func (c *Client) UpdateTemplate(ctx context.Context, key string, p TemplatePatch) (Template, error) {
	var out Template
	err := c.Do(ctx, http.MethodPatch, "/v1/templates/"+esc(key), p, &out)
	return out, err
}

// ArchiveTemplate archives a template (DELETE /v1/templates/{key}).
func (c *Client) ArchiveTemplate(ctx context.Context, key string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/templates/"+esc(key), nil, nil)
}

// CreateTemplateVersion adds a version, not yet active (POST /v1/templates/{key}/versions).
func (c *Client) CreateTemplateVersion(ctx context.Context, key string, in TemplateVersionInput) (TemplateVersion, error) {
	var out TemplateVersion
	err := c.Do(ctx, http.MethodPost, "/v1/templates/"+esc(key)+"/versions", in, &out)
	return out, err
}

// ListTemplateVersions returns a page of a template's versions, newest first
// (GET /v1/templates/{key}/versions).
func (c *Client) ListTemplateVersions(ctx context.Context, key string, p ListTemplateVersionsParams) (Page[TemplateVersion], error) {
	var out Page[TemplateVersion]
	err := c.Do(ctx, http.MethodGet, "/v1/templates/"+esc(key)+"/versions"+query(p), nil, &out)
	return out, err
}

// GetTemplateVersion returns version n (GET /v1/templates/{key}/versions/{n}).
func (c *Client) GetTemplateVersion(ctx context.Context, key string, n int) (TemplateVersion, error) {
	var out TemplateVersion
	err := c.Do(ctx, http.MethodGet, "/v1/templates/"+esc(key)+"/versions/"+strconv.Itoa(n), nil, &out)
	return out, err
}

// ActivateTemplateVersion makes version n the one its locale sends
// (POST /v1/templates/{key}/versions/{n}/activate).
func (c *Client) ActivateTemplateVersion(ctx context.Context, key string, n int) (TemplateVersion, error) {
	var out TemplateVersion
	err := c.Do(ctx, http.MethodPost, "/v1/templates/"+esc(key)+"/versions/"+strconv.Itoa(n)+"/activate", nil, &out)
	return out, err
}

// PreviewTemplate renders a version without sending (POST /v1/templates/{key}/preview).
func (c *Client) PreviewTemplate(ctx context.Context, key string, in TemplatePreviewInput) (TemplatePreview, error) {
	var out TemplatePreview
	err := c.Do(ctx, http.MethodPost, "/v1/templates/"+esc(key)+"/preview", in, &out)
	return out, err
}
