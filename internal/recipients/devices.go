package recipients

import (
	"context"
	"encoding/base64"
	"strings"
	"time"
	"unicode"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/webpush"
)

// MaxDevices is how many devices a profile keeps: registering one more forgets the one seen
// longest ago, which is the one most likely uninstalled.
const MaxDevices = 20

// Bounds of a device's fields.
const (
	maxTokenLen    = 4096 // FCM's tokens are about 160 characters; Web Push endpoints are URLs
	maxAppLen      = 255
	minAPNsToken   = 64 // 32 bytes in hex, today's length; Apple says not to assume it
	maxAPNsToken   = 200
	maxEndpointLen = 2000
)

// DeviceInput is a device to register, as the tenant's app sends it: a token for FCM and APNs, a
// browser's PushSubscription for Web Push.
type DeviceInput struct {
	Platform     domain.Platform
	Token        string
	Subscription *Subscription
	App          string
}

// Subscription is a browser's PushSubscription as it serializes (toJSON).
type Subscription struct {
	Endpoint       string
	ExpirationTime *int64 // milliseconds since 1970, or none
	P256DH, Auth   string
}

// AllowHTTPPush permits http:// and private Web Push endpoints (the dev stack's local push
// service), as COMMS_ALLOW_PRIVATE_NETWORKS does for webhook endpoints.
func (s *Service) AllowHTTPPush(allow bool) *Service {
	s.allowHTTPPush = allow
	return s
}

// RegisterDevice adds in to tenantID's profile recipientID, or refreshes it when its token is
// registered already (created false); a token registered for another profile moves to this one.
// Errors: *message.ValidationError naming each bad field, store.ErrNotFound (no such profile).
func (s *Service) RegisterDevice(ctx context.Context, tenantID, recipientID string, in DeviceInput) (domain.Device, bool, error) {
	d, err := s.checkDevice(in)
	if err != nil {
		return domain.Device{}, false, err
	}
	d.ID, d.RecipientID = ids.New(ids.Device), recipientID
	return s.store.PutDevice(ctx, tenantID, d, MaxDevices)
}

// Devices lists a profile's devices, last seen first. Errors: store.ErrNotFound (no such
// profile).
func (s *Service) Devices(ctx context.Context, tenantID, recipientID string) ([]domain.Device, error) {
	list, err := s.store.ListDevices(ctx, tenantID, recipientID)
	if err != nil || len(list) > 0 {
		return list, err
	}
	// None: say whether the profile exists.
	if _, err := s.store.GetRecipient(ctx, tenantID, recipientID); err != nil {
		return nil, err
	}
	return list, nil
}

// RemoveDevice forgets one of a profile's devices. Errors: store.ErrNotFound.
func (s *Service) RemoveDevice(ctx context.Context, tenantID, recipientID, id string) error {
	return s.store.DeleteDevice(ctx, tenantID, recipientID, id)
}

// checkDevice validates in and returns the device it describes.
func (s *Service) checkDevice(in DeviceInput) (domain.Device, error) {
	var bad []message.FieldError
	add := func(f, m string) { bad = append(bad, message.FieldError{Field: f, Message: m}) }
	d := domain.Device{Platform: in.Platform, App: in.App}
	if len(in.App) > maxAppLen || strings.IndexFunc(in.App, unicode.IsControl) >= 0 {
		add("app", "must be at most 255 characters, without control characters")
	}
	switch in.Platform {
	case domain.FCM, domain.APNs:
		if in.Subscription != nil {
			add("subscription", "is for webpush devices; an "+string(in.Platform)+" device has a token")
		}
		d.Token = in.Token
		switch {
		case in.Token == "":
			add("token", "is required")
		case in.Platform == domain.APNs && !isHexToken(in.Token):
			add("token", "must be the APNs device token in hex (64 characters or more)")
		case len(in.Token) > maxTokenLen || strings.IndexFunc(in.Token, unicode.IsSpace) >= 0 || strings.IndexFunc(in.Token, unicode.IsControl) >= 0:
			add("token", "must be the FCM registration token: at most 4096 characters, no spaces")
		}
		if in.Platform == domain.APNs {
			d.Token = strings.ToLower(in.Token)
		}
	case domain.WebPush:
		if in.Token != "" {
			add("token", "is for fcm and apns devices; a webpush device has a subscription")
		}
		sub := in.Subscription
		if sub == nil {
			add("subscription", "is required: the browser's PushSubscription, as JSON")
			break
		}
		d.Token = sub.Endpoint
		if len(sub.Endpoint) > maxEndpointLen {
			add("subscription.endpoint", "must be at most 2000 characters")
		} else if msg := netguard.CheckURL(sub.Endpoint, s.allowHTTPPush); msg != "" {
			add("subscription.endpoint", msg)
		}
		keys, err := webpush.ParseKeys(sub.P256DH, sub.Auth)
		if err != nil {
			name, msg, _ := strings.Cut(err.Error(), ": ")
			add("subscription.keys."+name, msg)
		} else {
			// Stored canonically: unpadded base64url.
			d.P256DH, d.Auth = base64.RawURLEncoding.EncodeToString(keys.P256DH), base64.RawURLEncoding.EncodeToString(keys.Auth)
		}
		if sub.ExpirationTime != nil {
			at := time.UnixMilli(*sub.ExpirationTime).UTC()
			d.ExpiresAt = &at
		}
	default:
		add("platform", "must be fcm, apns or webpush")
	}
	if len(bad) > 0 {
		return domain.Device{}, &message.ValidationError{Fields: bad}
	}
	return d, nil
}

func isHexToken(t string) bool {
	if len(t) < minAPNsToken || len(t) > maxAPNsToken || len(t)%2 != 0 {
		return false
	}
	return strings.IndexFunc(t, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
	}) < 0
}
