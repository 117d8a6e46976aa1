package domain

import (
	"encoding/json"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// ProviderConfig is a configured provider account: a tenant's own, or a system default
// (TenantID empty). Sealed holds the encrypted credentials; it never leaves the process.
type ProviderConfig struct {
	ID         string
	TenantID   string
	Type       string
	Name       string
	Channel    message.Channel
	Settings   json.RawMessage // non-secret adapter settings (the sandbox's latency)
	Sender     json.RawMessage // non-secret: from number or address
	Sealed     []byte
	KeyVersion string
	Mask       string
	Enabled    bool
	Priority   int
	// SendRatePerSecond caps sends through this config across all workers (0: no cap).
	SendRatePerSecond float64
	// UnitPrice (a decimal string, "" for none) in UnitCurrency prices one email or SMS segment
	// when the provider reports no price.
	UnitPrice, UnitCurrency string
	Health                  string
	HealthReason            string
	LastTestedAt            *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time
}
