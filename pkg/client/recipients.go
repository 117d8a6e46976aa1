package client

import (
	"context"
	"net/http"
)

// ListRecipients returns a page of recipient profiles in id order (GET /v1/recipients).
func (c *Client) ListRecipients(ctx context.Context, p ListRecipientsParams) (Page[Recipient], error) {
	var out Page[Recipient]
	err := c.Do(ctx, http.MethodGet, "/v1/recipients"+query(p), nil, &out)
	return out, err
}

// PutRecipient creates or replaces the profile id (PUT /v1/recipients/{id}).
func (c *Client) PutRecipient(ctx context.Context, id string, in RecipientInput) (Recipient, error) {
	var out Recipient
	err := c.Do(ctx, http.MethodPut, "/v1/recipients/"+esc(id), in, &out)
	return out, err
}

// GetRecipient returns a profile (GET /v1/recipients/{id}).
func (c *Client) GetRecipient(ctx context.Context, id string) (Recipient, error) {
	var out Recipient
	err := c.Do(ctx, http.MethodGet, "/v1/recipients/"+esc(id), nil, &out)
	return out, err
}

// UpdateRecipient changes the fields set in p (PATCH /v1/recipients/{id}).
func (c *Client) UpdateRecipient(ctx context.Context, id string, p RecipientInput) (Recipient, error) {
	var out Recipient
	err := c.Do(ctx, http.MethodPatch, "/v1/recipients/"+esc(id), p, &out)
	return out, err
}

// DeleteRecipient deletes a profile, its preferences and devices (DELETE /v1/recipients/{id}).
func (c *Client) DeleteRecipient(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/recipients/"+esc(id), nil, nil)
}

// CreateCategory adds a category of messages (POST /v1/categories).
func (c *Client) CreateCategory(ctx context.Context, in CategoryInput) (Category, error) {
	var out Category
	err := c.Do(ctx, http.MethodPost, "/v1/categories", in, &out)
	return out, err
}

// ListCategories returns the tenant's categories (GET /v1/categories).
func (c *Client) ListCategories(ctx context.Context) (Page[Category], error) {
	var out Page[Category]
	err := c.Do(ctx, http.MethodGet, "/v1/categories", nil, &out)
	return out, err
}

// GetCategory returns a category (GET /v1/categories/{key}).
func (c *Client) GetCategory(ctx context.Context, key string) (Category, error) {
	var out Category
	err := c.Do(ctx, http.MethodGet, "/v1/categories/"+esc(key), nil, &out)
	return out, err
}

// UpdateCategory changes a category (PATCH /v1/categories/{key}).
func (c *Client) UpdateCategory(ctx context.Context, key string, p CategoryInput) (Category, error) {
	var out Category
	err := c.Do(ctx, http.MethodPatch, "/v1/categories/"+esc(key), p, &out)
	return out, err
}

// DeleteCategory removes a category (DELETE /v1/categories/{key}).
func (c *Client) DeleteCategory(ctx context.Context, key string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/categories/"+esc(key), nil, nil)
}

// GetRecipientPreferences returns a profile's choices (GET /v1/recipients/{id}/preferences).
func (c *Client) GetRecipientPreferences(ctx context.Context, id string) (Preferences, error) {
	var out Preferences
	err := c.Do(ctx, http.MethodGet, "/v1/recipients/"+esc(id)+"/preferences", nil, &out)
	return out, err
}

// PutRecipientPreferences sets a profile's choices (PUT /v1/recipients/{id}/preferences).
func (c *Client) PutRecipientPreferences(ctx context.Context, id string, in Preferences) (Preferences, error) {
	var out Preferences
	err := c.Do(ctx, http.MethodPut, "/v1/recipients/"+esc(id)+"/preferences", in, &out)
	return out, err
}

// GetAddressPreferences returns the choices of a person without a profile, by address
// (GET /v1/preferences).
func (c *Client) GetAddressPreferences(ctx context.Context, p GetAddressPreferencesParams) (Preferences, error) {
	var out Preferences
	err := c.Do(ctx, http.MethodGet, "/v1/preferences"+query(p), nil, &out)
	return out, err
}

// PutAddressPreferences sets the choices of a person without a profile (PUT /v1/preferences).
func (c *Client) PutAddressPreferences(ctx context.Context, p PutAddressPreferencesParams, in Preferences) (Preferences, error) {
	var out Preferences
	err := c.Do(ctx, http.MethodPut, "/v1/preferences"+query(p), in, &out)
	return out, err
}

// CreateInboxToken makes a recipient token, for the person's browser to read its own inbox
// with (POST /v1/recipients/{id}/inbox-tokens).
func (c *Client) CreateInboxToken(ctx context.Context, id string, in InboxTokenRequest) (InboxToken, error) {
	var out InboxToken
	err := c.Do(ctx, http.MethodPost, "/v1/recipients/"+esc(id)+"/inbox-tokens", in, &out)
	return out, err
}

// RegisterDevice adds a push device to a profile, or refreshes it (POST /v1/recipients/{id}/devices).
func (c *Client) RegisterDevice(ctx context.Context, id string, in DeviceInput) (Device, error) {
	var out Device
	err := c.Do(ctx, http.MethodPost, "/v1/recipients/"+esc(id)+"/devices", in, &out)
	return out, err
}

// ListDevices returns a profile's devices (GET /v1/recipients/{id}/devices).
func (c *Client) ListDevices(ctx context.Context, id string) (Page[Device], error) {
	var out Page[Device]
	err := c.Do(ctx, http.MethodGet, "/v1/recipients/"+esc(id)+"/devices", nil, &out)
	return out, err
}

// RemoveDevice removes a device from a profile (DELETE /v1/recipients/{id}/devices/{device}).
func (c *Client) RemoveDevice(ctx context.Context, id, device string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/recipients/"+esc(id)+"/devices/"+esc(device), nil, nil)
}
