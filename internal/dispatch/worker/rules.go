package worker

import (
	"math/big"
	"strings"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// The rules of an attempt's outcome, stated in Go; the store records what they decide, in one
// round trip per batch (store.FinishMessages).

// Cost sources, as message_logs.cost_source records them.
const (
	costFromProvider  = "provider"   // the provider reported the price with the send
	costFromUnitPrice = "unit_price" // the config's unit price for each unit sent
)

// price is what a sent message costs and where the figure comes from: what the provider
// reported; else the config's unit price for each unit (an SMS segment, an email); else nothing
// known (a provider that prices later fills it in through the pricer).
func price(c *store.Claimed, cfg domain.ProviderConfig, reportedCost, reportedCurrency string) (cost, currency, source string) {
	if reportedCost != "" {
		return reportedCost, reportedCurrency, costFromProvider
	}
	if cfg.UnitPrice == "" {
		return "", "", ""
	}
	total, ok := multiply(cfg.UnitPrice, units(c))
	if !ok {
		return "", "", ""
	}
	return total, cfg.UnitCurrency, costFromUnitPrice
}

// units is what a message is charged by: its segments for an SMS (1 when unknown), 1 for an email.
func units(c *store.Claimed) int {
	if c.Channel == message.SMS && c.SMS != nil && c.SMS.Segments > 0 {
		return c.SMS.Segments
	}
	return 1
}

// multiply is the exact decimal product of price and n, with price's number of decimals (as
// PostgreSQL's numeric gives it): "0.0079" × 2 = "0.0158".
func multiply(price string, n int) (string, bool) {
	r, ok := new(big.Rat).SetString(price)
	if !ok {
		return "", false
	}
	decimals := 0
	if _, frac, found := strings.Cut(price, "."); found {
		decimals = len(frac)
	}
	return r.Mul(r, big.NewRat(int64(n), 1)).FloatString(decimals), true
}

// eventOf is the status an outcome's timeline event records: a retry is "retrying" (the
// message itself goes back to queued); sent and failed are themselves.
func eventOf(s message.Status) string {
	if s == message.Queued {
		return "retrying"
	}
	return string(s)
}
