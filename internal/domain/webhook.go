package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/event"
)

// WebhookEndpoint is a tenant's webhook endpoint. The sealed secrets never leave the server.
type WebhookEndpoint struct {
	ID             string
	TenantID       string
	URL            string
	Description    string
	EventTypes     []string // empty: every type
	Enabled        bool
	DisabledReason string
	FailingSince   *time.Time
	// PreviousSecretExpiresAt is when the secret replaced by the last rotation stops signing.
	PreviousSecretExpiresAt *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time

	KeyVersion         string
	Sealed             []byte
	PreviousKeyVersion string
	PreviousSealed     []byte
}

// WebhookEndpointPatch changes an endpoint; nil fields stay as they are. Enabling an endpoint
// clears its disabled reason and its failure streak.
type WebhookEndpointPatch struct {
	URL         *string
	Description *string
	EventTypes  *[]string
	Enabled     *bool
}

// WebhookAttempt is one try at delivering an event to an endpoint.
type WebhookAttempt struct {
	At         time.Time
	StatusCode int // 0: no response
	LatencyMS  int
	Response   string // the start of the response body
	Error      string
}

// WebhookDelivery is one event for one endpoint.
type WebhookDelivery struct {
	ID            int64
	EndpointID    string
	TenantID      string
	EventID       string
	EventType     string
	Payload       []byte
	Status        event.DeliveryStatus
	Attempts      int
	RoundAttempts int
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	AttemptLog    []WebhookAttempt
}

// WebhookReplay is a request to deliver an endpoint's past deliveries again.
type WebhookReplay struct {
	Since  time.Time
	Until  *time.Time
	Status event.DeliveryStatus // succeeded or failed; empty: both
}
