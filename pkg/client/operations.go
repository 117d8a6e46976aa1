package client

import (
	"context"
	"net/http"
)

// Health answers whether the API process is up (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Ready answers whether the API process can serve: its database, Redis and broker reachable
// (GET /readyz).
func (c *Client) Ready(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// OpenAPI returns the API document the server was built with (GET /openapi.json).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/openapi.json", nil, &out)
	return out, err
}

// APIReference returns the browsable reference page (GET /docs).
func (c *Client) APIReference(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/docs", nil, &out)
	return out, err
}

// APIReferenceAsset returns a script of the reference page (GET /docs/{file}).
func (c *Client) APIReferenceAsset(ctx context.Context, file string) ([]byte, error) {
	var out []byte
	err := c.Do(ctx, http.MethodGet, "/docs/"+esc(file), nil, &out)
	return out, err
}
