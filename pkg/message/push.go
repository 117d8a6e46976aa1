package message

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// PushContent is a push notification, mapped onto each platform's payload by its adapter
// (docs/push.md#sending). Its title and body are stored as a message's subject and text.
type PushContent struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	// Data is for the app, string to string: the one shape every platform carries (FCM's data
	// is strings only).
	Data        map[string]string `json:"data,omitempty"`
	Image       string            `json:"image,omitempty"` // an https URL
	Badge       *int              `json:"badge,omitempty"` // the app icon's count (APNs; FCM on iOS)
	Sound       string            `json:"sound,omitempty"` // a sound file of the app, or "default"
	CollapseKey string            `json:"collapse_key,omitempty"`
	// TTLSeconds is how long a push service keeps the notification for a device that is offline
	// (default: each service's own, up to 4 weeks); 0 delivers now or never.
	TTLSeconds *int `json:"ttl_seconds,omitempty"`
	// Priority is "high" (wake the device now) or "normal" (when convenient; the default).
	Priority string `json:"priority,omitempty"`
}

// Limits of a push message (docs/push.md#sending): the encoded content fits every platform's
// payload (Web Push's is the smallest: 3,993 bytes of plaintext) with room for its wrapping.
const (
	MaxPushTitleLen    = 200  // characters
	MaxPushBodyLen     = 2000 // characters
	MaxPushBytes       = 3000 // bytes of the content as JSON
	MaxPushDataKeys    = 50
	MaxPushTTLSeconds  = 2419200 // 28 days: FCM's and Web Push services' longest
	MaxPushBadge       = 99999
	maxPushCollapseLen = 64 // APNs' apns-collapse-id limit
)

// validatePush checks a push request: a recipient profile (To is its id, from the profile), content
// in push with a title or a body, and none of the other channels' fields.
func validatePush(r *Request, add func(field, format string, args ...any)) {
	if r.To == "" {
		add("recipient", "is required for push: the profile whose devices the notification goes to")
	}
	for _, f := range []struct{ name, val string }{{"from", r.From}, {"subject", r.Subject}, {"text", r.Text}, {"html", r.HTML}} {
		if f.val != "" {
			add(f.name, "is not allowed for push: the content is in push.title, push.body and push.data")
		}
	}
	c := r.Push
	if c == nil || c.Title == "" && c.Body == "" {
		add("push", "is required for push, with a title or a body")
		return
	}
	if n := utf8.RuneCountInString(c.Title); n > MaxPushTitleLen || !utf8.ValidString(c.Title) {
		add("push.title", "must be valid UTF-8 of at most %d characters", MaxPushTitleLen)
	}
	if n := utf8.RuneCountInString(c.Body); n > MaxPushBodyLen || !utf8.ValidString(c.Body) {
		add("push.body", "must be valid UTF-8 of at most %d characters", MaxPushBodyLen)
	}
	if len(c.Data) > MaxPushDataKeys {
		add("push.data", "has %d keys; at most %d are allowed", len(c.Data), MaxPushDataKeys)
	}
	for k, v := range c.Data {
		switch {
		case k == "" || !utf8.ValidString(k) || !utf8.ValidString(v):
			add("push.data", "keys must be non-empty and keys and values valid UTF-8")
		case reservedPushKey(k):
			add("push.data."+k, "is reserved by the push services (from, notification, message_type, collapse_key, aps, google.*, gcm.*)")
		}
	}
	if c.Image != "" {
		if u, err := url.Parse(c.Image); err != nil || u.Scheme != "https" || u.Host == "" || len(c.Image) > 2048 {
			add("push.image", "must be an absolute https URL of at most 2048 bytes")
		}
	}
	if c.Badge != nil && (*c.Badge < 0 || *c.Badge > MaxPushBadge) {
		add("push.badge", "must be from 0 to %d", MaxPushBadge)
	}
	if len(c.Sound) > 255 || strings.ContainsAny(c.Sound, "/\\\x00") {
		add("push.sound", "must be the name of a sound file of the app (at most 255 bytes, no path), or \"default\"")
	}
	if len(c.CollapseKey) > maxPushCollapseLen || !utf8.ValidString(c.CollapseKey) {
		add("push.collapse_key", "must be at most %d bytes", maxPushCollapseLen)
	}
	if c.TTLSeconds != nil && (*c.TTLSeconds < 0 || *c.TTLSeconds > MaxPushTTLSeconds) {
		add("push.ttl_seconds", "must be from 0 to %d (28 days)", MaxPushTTLSeconds)
	}
	if c.Priority != "" && c.Priority != "high" && c.Priority != "normal" {
		add("push.priority", `must be "high" or "normal"`)
	}
	if b, _ := json.Marshal(c); len(b) > MaxPushBytes {
		add("push", "is %d bytes as JSON; at most %d fit every platform's payload", len(b), MaxPushBytes)
	}
}

func reservedPushKey(k string) bool {
	switch k {
	case "from", "notification", "message_type", "collapse_key", "aps":
		return true
	}
	return strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.")
}

// Delivery is a push message's delivery to one of its recipient's devices (docs/push.md#sending).
type Delivery struct {
	DeviceID          string    `json:"device_id"`
	Platform          string    `json:"platform"` // fcm, apns or webpush
	Status            string    `json:"status"`   // sent, retrying, failed or removed
	ProviderConfigID  string    `json:"provider_id,omitempty"`
	ProviderType      string    `json:"provider,omitempty"`
	ProviderMessageID string    `json:"provider_message_id,omitempty"`
	Error             *Error    `json:"error,omitempty"`
	Attempt           int       `json:"attempt"`
	UpdatedAt         time.Time `json:"updated_at"`
}
