package domain

import "time"

// Platform is the push service a device is reached through.
type Platform string

// Platforms.
const (
	FCM     Platform = "fcm"     // Firebase Cloud Messaging: Android, and iOS through Firebase
	APNs    Platform = "apns"    // Apple Push Notification service
	WebPush Platform = "webpush" // a browser's push service (RFC 8030)
)

// Valid reports whether p is a known platform.
func (p Platform) Valid() bool { return p == FCM || p == APNs || p == WebPush }

// Device is a recipient profile's device: where its push notifications go.
type Device struct {
	ID          string // dev_…
	RecipientID string // the profile's external id
	Platform    Platform
	// Token is the FCM registration token, the APNs device token (hex), or the Web Push
	// subscription's endpoint.
	Token string
	// P256DH and Auth are a Web Push subscription's keys (base64url); empty for the others.
	P256DH, Auth string
	App          string     // the app or bundle id it belongs to, as the tenant says; may be empty
	ExpiresAt    *time.Time // a Web Push subscription's expirationTime
	CreatedAt    time.Time
	LastSeenAt   time.Time // when it was last registered
}

// PushDelivery is a push message's delivery to one device.
type PushDelivery struct {
	DeviceID          string
	Platform          Platform
	ProviderConfigID  string
	ProviderType      string
	Status            string // sent, retrying, failed or removed
	ProviderMessageID string
	ErrorCode         string
	ErrorMessage      string
	Attempt           int
	UpdatedAt         time.Time
}

// Statuses of a push delivery. Only a retrying one is tried again.
const (
	DeliverySent     = "sent"
	DeliveryRetrying = "retrying"
	DeliveryFailed   = "failed"
	DeliveryRemoved  = "removed" // the push service said the device is gone; it was removed
)
