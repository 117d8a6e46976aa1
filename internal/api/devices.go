package api

import (
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/message"
)

// PushSubscription is a browser's PushSubscription exactly as its toJSON() writes it.
type PushSubscription struct {
	Endpoint       string `json:"endpoint"`
	ExpirationTime *int64 `json:"expirationTime"`
	Keys           struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// Device is a recipient's device as the API shows it: a token for FCM and APNs, the
// subscription for Web Push.
type Device struct {
	ID           string            `json:"id"`
	Recipient    string            `json:"recipient"`
	Platform     domain.Platform   `json:"platform"`
	Token        string            `json:"token,omitempty"`
	Subscription *PushSubscription `json:"subscription,omitempty"`
	App          string            `json:"app,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	LastSeenAt   time.Time         `json:"last_seen_at"`
}

// DeviceView is d as the API shows it.
func DeviceView(d domain.Device) Device {
	v := Device{ID: d.ID, Recipient: d.RecipientID, Platform: d.Platform, App: d.App, CreatedAt: d.CreatedAt, LastSeenAt: d.LastSeenAt}
	if d.Platform != domain.WebPush {
		v.Token = d.Token
		return v
	}
	sub := &PushSubscription{Endpoint: d.Token}
	sub.Keys.P256DH, sub.Keys.Auth = d.P256DH, d.Auth
	if d.ExpiresAt != nil {
		ms := d.ExpiresAt.UnixMilli()
		sub.ExpirationTime = &ms
	}
	v.Subscription = sub
	return v
}

// DeviceInput is the body of POST /v1/recipients/{id}/devices.
type DeviceInput struct {
	Platform     domain.Platform   `json:"platform"`
	Token        string            `json:"token"`
	Subscription *PushSubscription `json:"subscription"`
	App          string            `json:"app"`
}

// registerDevice adds a device to a profile (201), or refreshes one registered before (200).
func (s *Server) registerDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	var in DeviceInput
	if prob := decodeJSON(r, 8<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	dev := recipients.DeviceInput{Platform: in.Platform, Token: in.Token, App: in.App}
	if sub := in.Subscription; sub != nil {
		dev.Subscription = &recipients.Subscription{Endpoint: sub.Endpoint, ExpirationTime: sub.ExpirationTime,
			P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}
	}
	d, created, err := s.Recipients.RegisterDevice(r.Context(), principalFrom(r.Context()).TenantID, id, dev)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.answer(w, r, status, DeviceView(d), err, "the recipient store (nothing changed)", nil)
}

// listDevices lists a profile's devices, last seen first (at most recipients.MaxDevices: one page).
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	list, err := s.Recipients.Devices(r.Context(), principalFrom(r.Context()).TenantID, id)
	writePage(s, w, r, "devices", Views(list, DeviceView), "", err)
}

// removeDevice forgets one of a profile's devices.
func (s *Server) removeDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	dev := r.PathValue("device")
	if !ids.HasPrefix(dev, ids.Device) {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid path",
			message.FieldError{Field: "device", Message: "must be a device id (dev_…)"}))
		return
	}
	err := s.Recipients.RemoveDevice(r.Context(), principalFrom(r.Context()).TenantID, id, dev)
	s.answer(w, r, http.StatusNoContent, nil, err, "the recipient store (nothing changed)", nil)
}
