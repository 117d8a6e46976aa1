package event

// DeliveryStatus is where a delivery of an event to a tenant's webhook endpoint stands.
type DeliveryStatus string

const (
	// DeliveryPending: not yet answered with a 2xx; next_attempt_at says when it is tried again.
	DeliveryPending DeliveryStatus = "pending"
	// DeliverySucceeded: the endpoint answered 2xx.
	DeliverySucceeded DeliveryStatus = "succeeded"
	// DeliveryFailed: every attempt of its schedule failed (or the endpoint was disabled).
	DeliveryFailed DeliveryStatus = "failed"
)

// Valid reports whether s is one of the statuses.
func (s DeliveryStatus) Valid() bool {
	return s == DeliveryPending || s == DeliverySucceeded || s == DeliveryFailed
}

// Final reports whether s is a status a delivery stays in (succeeded or failed).
func (s DeliveryStatus) Final() bool { return s == DeliverySucceeded || s == DeliveryFailed }
