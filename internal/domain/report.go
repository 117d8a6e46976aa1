package domain

import (
	"time"

	"github.com/logicspike/comms/pkg/message"
)

// Counters are usage counts. Each counts transitions, so duplicate and out-of-order callbacks,
// retries and replays never count twice: a message is accepted once, sent once, delivered once.
type Counters struct {
	Accepted  int64
	Attempts  int64
	Sent      int64
	Delivered int64
	Failed    int64
	Bounced   int64
	Segments  int64
	// Cost is one amount per currency, as exact decimal strings.
	Cost []Money
}

// Add adds c to n. Each call brings its own currencies: rows of one grouping differ in currency.
func (n *Counters) Add(c Counters) {
	n.Accepted += c.Accepted
	n.Attempts += c.Attempts
	n.Sent += c.Sent
	n.Delivered += c.Delivered
	n.Failed += c.Failed
	n.Bounced += c.Bounced
	n.Segments += c.Segments
	n.Cost = append(n.Cost, c.Cost...)
}

// Money is an amount in one currency.
type Money struct {
	Currency string
	Amount   string
}

// UsageRow is the usage of one combination of the grouped dimensions; only those are set.
type UsageRow struct {
	Day      string
	Month    string
	Channel  string
	Provider string // the provider config id
	Template string
	Category string
	Counters
}

// Bucket is one interval of a tenant's delivery counts.
type Bucket struct {
	Start      time.Time
	Sent       int64
	Delivered  int64
	Opened     int64
	Clicked    int64
	Bounced    int64
	Complained int64
	Failed     int64
	Read       int64 // in_app messages their recipient read (docs/inbox.md)
}

// ProviderErrorCount is how often one provider config met one error in a period.
type ProviderErrorCount struct {
	ProviderType     string
	ProviderConfigID string
	ProviderName     string
	Channel          message.Channel
	Code             string
	Count            int64
	Example          ErrorExample
}

// ErrorExample is the latest provider message for an error.
type ErrorExample struct {
	Message      string
	ProviderCode string
	At           time.Time
}
