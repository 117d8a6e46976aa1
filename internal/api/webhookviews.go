package api

import (
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/webhooks"
	"github.com/logicspike/comms/pkg/event"
)

// The webhook endpoint resources as the API shows them and takes them (docs/webhooks.md),
// spelt apart from domain's types: the sealed secrets and internal ids never appear.

// WebhookEndpoint is a tenant's endpoint, without its secret.
type WebhookEndpoint struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"event_types"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason,omitempty"`
	FailingSince            *time.Time `json:"failing_since,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// EndpointView is e as the API shows it.
func EndpointView(e domain.WebhookEndpoint) WebhookEndpoint {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return WebhookEndpoint{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: types, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, FailingSince: e.FailingSince, PreviousSecretExpiresAt: e.PreviousSecretExpiresAt,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// WebhookEndpointWithSecret is the answer to a create or a rotation: the only times the signing
// secret is shown.
type WebhookEndpointWithSecret struct {
	WebhookEndpoint
	Secret string `json:"secret"`
}

func endpointWithSecret(ws webhooks.WithSecret) WebhookEndpointWithSecret {
	return WebhookEndpointWithSecret{WebhookEndpoint: EndpointView(ws.WebhookEndpoint), Secret: ws.Secret}
}

// WebhookEndpointPatch is the body of PATCH /v1/webhook-endpoints/{id}; absent fields stay.
type WebhookEndpointPatch struct {
	URL         *string   `json:"url,omitempty"`
	Description *string   `json:"description,omitempty"`
	EventTypes  *[]string `json:"event_types,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
}

func (p WebhookEndpointPatch) domain() domain.WebhookEndpointPatch {
	return domain.WebhookEndpointPatch{URL: p.URL, Description: p.Description, EventTypes: p.EventTypes, Enabled: p.Enabled}
}

// WebhookAttempt is one try at delivering an event.
type WebhookAttempt struct {
	At         time.Time `json:"attempted_at"`
	StatusCode int       `json:"status_code,omitempty"` // 0: no response
	LatencyMS  int       `json:"latency_ms"`
	Response   string    `json:"response,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// WebhookDelivery is one event for one endpoint, with its attempts.
type WebhookDelivery struct {
	EndpointID    string               `json:"endpoint_id"`
	EventID       string               `json:"event_id"`
	EventType     string               `json:"event_type"`
	Status        event.DeliveryStatus `json:"status"`
	Attempts      int                  `json:"attempts"`
	NextAttemptAt *time.Time           `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time            `json:"created_at"`
	AttemptLog    []WebhookAttempt     `json:"attempt_log"`
}

// DeliveryView is d as the API shows it.
func DeliveryView(d domain.WebhookDelivery) WebhookDelivery {
	log := make([]WebhookAttempt, len(d.AttemptLog))
	for i, a := range d.AttemptLog {
		log[i] = WebhookAttempt{At: a.At, StatusCode: a.StatusCode, LatencyMS: a.LatencyMS, Response: a.Response, Error: a.Error}
	}
	return WebhookDelivery{EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, Status: d.Status, Attempts: d.Attempts,
		NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, AttemptLog: log}
}

// WebhookReplay is the body of POST /v1/webhook-endpoints/{id}/replay.
type WebhookReplay struct {
	Since  time.Time            `json:"since"`
	Until  *time.Time           `json:"until,omitempty"`
	Status event.DeliveryStatus `json:"status,omitempty"` // succeeded or failed; empty: both
}

func (r WebhookReplay) domain() domain.WebhookReplay {
	return domain.WebhookReplay{Since: r.Since, Until: r.Until, Status: r.Status}
}
