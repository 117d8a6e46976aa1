// Package metrics holds the service's Prometheus metrics, registered once in the default registry
// and served at /metrics by every binary. Labels carry tenant ids: fine for the thousands of
// tenants this service is built for; drop the label in a relabel rule beyond that.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	// Accepted counts messages accepted at intake (202).
	Accepted = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_messages_accepted_total", Help: "Messages accepted at intake.",
	}, []string{"tenant", "channel"})
	// Sent counts messages a provider accepted.
	Sent = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_messages_sent_total", Help: "Messages a provider accepted.",
	}, []string{"tenant", "channel", "provider"})
	// Failed counts messages that ended failed, by normalized code.
	Failed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_messages_failed_total", Help: "Messages that ended failed, by normalized error code.",
	}, []string{"tenant", "channel", "provider", "code"})
	// Retries counts retries scheduled.
	Retries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_retries_scheduled_total", Help: "Retries scheduled after a transient failure.",
	}, []string{"provider", "code"})
	// DeadLetters counts messages dead-lettered after exhausting their retries.
	DeadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_dead_letters_total", Help: "Messages dead-lettered after exhausting their retries.",
	}, []string{"provider", "code"})
	// ProviderLatency times provider calls.
	ProviderLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "comms_provider_send_seconds", Help: "Time a provider took to answer a send.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"provider", "outcome"})
	// DispatchStage times the rest of accepted -> sent, to show where it goes: queue (from when the
	// intake built the intent, before its insert and produce, or from a retry's due time, until a
	// worker fetched it), claim (fetched until claimed: routing, the parking decision and the
	// claim's batch), record (the provider answered until the outcome was committed). The provider
	// call itself is ProviderLatency.
	DispatchStage = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "comms_dispatch_stage_seconds", Help: "Time a message spent in each stage of dispatch (queue, claim, record), besides the provider call.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"stage"})
	// AcceptedToSent times a message's first attempt from the intake building its intent (accepted)
	// until the provider accepted it and the outcome was committed: the figure tenants feel. Retries
	// and parked intents are left out: their waits are by design.
	AcceptedToSent = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "comms_accepted_to_sent_seconds", Help: "Time from acceptance to the provider's acceptance, for first attempts sent.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"channel"})
	// Failovers counts sends moved to the next provider config.
	Failovers = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_failovers_total", Help: "Sends moved to the next provider config after an account-level failure.",
	}, []string{"provider", "code"})
	// BreakerState is each provider config's breaker in this process: 0 closed, 1 half-open, 2 open.
	BreakerState = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "comms_breaker_state", Help: "Circuit breaker per provider config: 0 closed, 1 half-open, 2 open.",
	}, []string{"provider_id"})
	// RateLimited counts intake requests refused with 429.
	RateLimited = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_rate_limited_total", Help: "Intake requests refused by the tenant's rate limit.",
	}, []string{"tenant"})
	// RateLimitErrors counts decisions the limiter could not make (Redis unreachable): let through.
	RateLimitErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_ratelimit_errors_total", Help: "Rate-limit checks that failed (Redis unreachable) and were let through.",
	}, []string{"where"})
	// ConsumerLag is how many messages of a topic a consumer group has yet to commit (the broker's
	// high watermarks minus the group's committed offsets, summed over partitions).
	ConsumerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "comms_consumer_lag", Help: "Messages the consumer group has yet to read.",
	}, []string{"topic", "group"})
	// Parked counts intents a worker deferred unclaimed because every route was refusing sends.
	Parked = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_intents_parked_total", Help: "Intents deferred without an attempt because every route was refusing sends (open breaker, full bulkhead).",
	}, []string{"tenant"})
	// Callbacks counts provider callbacks by outcome: accepted, duplicate, unverified, malformed,
	// unknown_config, too_large, unavailable (not stored: the provider retries).
	Callbacks = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_callbacks_total", Help: "Provider delivery callbacks received, by outcome.",
	}, []string{"provider", "outcome"})
	// CallbacksApplied counts stored callbacks the applier applied to a message, left waiting
	// for one, or gave up on (unmatched: kept for reconciliation).
	CallbacksApplied = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_callbacks_applied_total", Help: "Stored callbacks applied to messages, by outcome (applied, waiting, unmatched).",
	}, []string{"outcome"})
	// EventsPublished counts events produced to comms.events, by type.
	EventsPublished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_events_published_total", Help: "Events produced to comms.events, by type.",
	}, []string{"type"})
	// EventOutbox is how many events are committed but not yet on comms.events: the publishers' lag.
	EventOutbox = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "comms_event_outbox_pending", Help: "Events written with their change and not yet produced to comms.events.",
	})
	// EventOutboxAge is how long the oldest event waiting in the outbox has waited: a stuck
	// publisher shows here while the count may stay small.
	EventOutboxAge = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "comms_event_outbox_oldest_seconds", Help: "Age of the oldest event not yet produced to comms.events (0 when none waits).",
	})
	// HistoryPartitionsUntil is when the history tables' partitions run out: the intake refuses
	// messages past it. An absolute time, so it keeps counting down in the alert while the loop
	// that sets it has stopped.
	HistoryPartitionsUntil = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "comms_history_partitions_until_timestamp_seconds",
		Help: "Unix time up to which every partitioned history table has its weeks; messages past it are refused.",
	})
	// HistoryWeekDrop is how long dropping each expired week of history took: mostly the
	// filesystem freeing the week's files, which a volume mounted with online discard makes slow
	// for every writer on it (docs/operations.md#partitions).
	HistoryWeekDrop = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "comms_history_week_drop_seconds", Help: "Time the partition loop took to drop each expired week of history.",
		Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})
	// QuotaRefused counts intake requests refused by a tenant's hard monthly quota (429 quota-exceeded).
	QuotaRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_quota_refused_total", Help: "Intake requests refused by the tenant's hard monthly quota.",
	}, []string{"tenant", "channel"})
	// WebhookAttempts counts deliveries attempted to tenant webhook endpoints, by result
	// (succeeded, failed: a non-2xx answer, error: no answer) and deferred ones (busy: the
	// endpoint had every slot taken, so the delivery waits for the retry loop).
	WebhookAttempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "comms_webhook_attempts_total", Help: "Attempts to deliver events to tenant webhook endpoints, by result.",
	}, []string{"result"})
	// WebhookLatency is how long endpoints take to answer.
	WebhookLatency = promauto.NewHistogram(prometheus.HistogramOpts{
		Name: "comms_webhook_attempt_seconds", Help: "Time from request to response of webhook deliveries.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
	})
	// WebhookDisabled counts endpoints disabled after failing for the whole disable window.
	WebhookDisabled = promauto.NewCounter(prometheus.CounterOpts{
		Name: "comms_webhook_endpoints_disabled_total", Help: "Webhook endpoints disabled after failing for five days.",
	})
)

// BuildInfo is 1, labelled with what is running: the version and commit stamped at build, and
// the Go version. Set once at start (app.Main).
var BuildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "comms_build_info", Help: "The running build: 1, labelled with its version, commit and Go version.",
}, []string{"binary", "version", "commit", "goversion"})

// Handler serves the default registry.
func Handler() http.Handler { return promhttp.Handler() }
