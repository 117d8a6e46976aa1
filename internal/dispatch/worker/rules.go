package worker

import (
	"math/big"
	"strings"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// The rules of an attempt's outcome, stated in Go; the store records what they decide, in one
// round trip per batch (store.FinishAttempts).

// outcome is one attempt's result: what its message records, and what the rules need to know to
// decide the rest.
type outcome struct {
	store.Outcome
	awaitsCallbacks bool   // the provider reports deliveries by callback
	pricedLater     bool   // the provider prices a send some time after it
	envelope        []byte // the intent to replay, when the attempt dead-letters the message
	// suppress ("bounce" or "complaint") is set when the provider refused the recipient for good
	// (Twilio 21610, a STOP); recipientKey is the address as the suppression list keys it.
	suppress, recipientKey string
}

// outcomeWriter is what the rules write through: store.OutcomeTx.
type outcomeWriter interface {
	Record(o store.Outcome)
	Emit(ref store.Ref, event string)
	IndexForCallbacks(ref store.Ref)
	PriceLater(ref store.Ref)
	DeadLetter(ref store.Ref, envelope []byte)
	Suppress(ref store.Ref, recipientKey, reason string)
}

// write states what an outcome writes: its message's row and timeline event, always; for a
// message sent through a provider that calls back, the index its callbacks find it by; for one
// sent without a price through a provider that prices later, a price check; for one that ran
// out of retries, a dead letter; for one whose recipient the provider refuses from now on (a
// STOP), the suppression the callback of such a refusal would have added.
func write(tx outcomeWriter, o outcome) {
	tx.Record(o.Outcome)
	tx.Emit(o.Ref, eventOf(o.Status))
	tracked := o.Status == message.Sent && o.ProviderConfigID != "" && o.ProviderMessageID != ""
	if tracked && o.awaitsCallbacks {
		tx.IndexForCallbacks(o.Ref)
	}
	if tracked && o.pricedLater && o.CostSource != costFromProvider {
		tx.PriceLater(o.Ref)
	}
	if o.Status == message.Failed && o.envelope != nil {
		tx.DeadLetter(o.Ref, o.envelope)
	}
	if o.Status == message.Failed && o.suppress != "" {
		tx.Suppress(o.Ref, o.recipientKey, o.suppress)
	}
}

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
