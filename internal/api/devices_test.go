package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/logicspike/comms/internal/api"
)

// A browser's PushSubscription keys (RFC 8291's example subscriber).
const (
	subP256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	subAuth   = "BTBZMqHH6r4Tts7J_aSIgg"
)

// A profile's devices are registered by the tenant's app (again at every launch, which refreshes
// rather than duplicates), listed, moved to the profile that registers a token last, bounded,
// removed, and gone with the profile; bad fields are named and change nothing; another tenant
// sees none of them.
func TestDevicesOnARecipient(t *testing.T) {
	s := start(t)
	_, key := s.Tenant()
	_, other := s.Tenant()
	for _, id := range []string{"u_1", "u_2"} {
		if resp := s.Do("PUT", "/v1/recipients/"+id, key, map[string]any{}, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d", id, resp.StatusCode)
		}
	}
	register := func(recipient string, body map[string]any, want int) api.Device {
		t.Helper()
		var d api.Device
		if resp := s.Do("POST", "/v1/recipients/"+recipient+"/devices", key, body, nil, &d); resp.StatusCode != want {
			t.Fatalf("POST %v: %d, want %d", body, resp.StatusCode, want)
		}
		return d
	}
	list := func(k, recipient string, want int) []api.Device {
		t.Helper()
		var page struct {
			Data []api.Device `json:"data"`
		}
		if resp := s.Do("GET", "/v1/recipients/"+recipient+"/devices", k, nil, nil, &page); resp.StatusCode != want {
			t.Fatalf("GET devices of %s: %d, want %d", recipient, resp.StatusCode, want)
		}
		return page.Data
	}

	fcm := register("u_1", map[string]any{"platform": "fcm", "token": "fcm-token-1", "app": "com.acme.app"}, http.StatusCreated)
	if !strings.HasPrefix(fcm.ID, "dev_") || fcm.Recipient != "u_1" || fcm.Token != "fcm-token-1" || fcm.App != "com.acme.app" || fcm.Subscription != nil {
		t.Fatalf("fcm device: %+v", fcm)
	}
	again := register("u_1", map[string]any{"platform": "fcm", "token": "fcm-token-1", "app": "com.acme.app"}, http.StatusOK)
	if again.ID != fcm.ID || !again.LastSeenAt.After(fcm.LastSeenAt) || again.App != "com.acme.app" {
		t.Fatalf("registered again: %+v, first %+v", again, fcm)
	}
	// The audit log has the registration, with the token masked, and not the refresh.
	var created, updated, clear int
	if err := s.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE action = 'device.created'),
		count(*) FILTER (WHERE action = 'device.updated'), count(*) FILTER (WHERE after::text LIKE '%fcm-token-1%')
		FROM communication.audit_log WHERE target_id = $1`, fcm.ID).Scan(&created, &updated, &clear); err != nil {
		t.Fatal(err)
	}
	if created != 1 || updated != 0 || clear != 0 {
		t.Fatalf("audit of the device: %d created, %d updated (want 1, 0), %d rows with the token in clear", created, updated, clear)
	}
	apns := register("u_1", map[string]any{"platform": "apns", "token": strings.Repeat("AB12", 16)}, http.StatusCreated)
	if apns.Token != strings.Repeat("ab12", 16) {
		t.Fatalf("an APNs token is kept in lower case: %q", apns.Token)
	}
	sub := map[string]any{"endpoint": "https://push.example.net/wpush/v2/abc", "expirationTime": 1893456000000,
		"keys": map[string]any{"p256dh": subP256DH, "auth": subAuth}}
	web := register("u_1", map[string]any{"platform": "webpush", "subscription": sub}, http.StatusCreated)
	if web.Token != "" || web.Subscription == nil || web.Subscription.Endpoint != sub["endpoint"] || web.Subscription.Keys.P256DH != subP256DH ||
		web.Subscription.Keys.Auth != subAuth || web.Subscription.ExpirationTime == nil || *web.Subscription.ExpirationTime != 1893456000000 {
		t.Fatalf("webpush device: %+v %+v", web, web.Subscription)
	}
	if got := list(key, "u_1", 200); len(got) != 3 || got[0].ID != web.ID || got[1].ID != apns.ID || got[2].ID != fcm.ID {
		t.Fatalf("u_1's devices, last seen first: %+v", got)
	}

	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"platform": "sms", "token": "x"}, "platform"},
		{map[string]any{"platform": "fcm"}, "token"},
		{map[string]any{"platform": "fcm", "token": "has a space"}, "token"},
		{map[string]any{"platform": "fcm", "token": "t", "subscription": sub}, "subscription"},
		{map[string]any{"platform": "apns", "token": "not-hex"}, "token"},
		{map[string]any{"platform": "webpush", "token": "x", "subscription": sub}, "token"},
		{map[string]any{"platform": "webpush"}, "subscription"},
		{map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": "ftp://push.example.net/x",
			"keys": map[string]any{"p256dh": subP256DH, "auth": subAuth}}}, "subscription.endpoint"},
		{map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": "https://push.example.net/x",
			"keys": map[string]any{"p256dh": subAuth, "auth": subAuth}}}, "subscription.keys.p256dh"},
		{map[string]any{"platform": "webpush", "subscription": map[string]any{"endpoint": "https://push.example.net/x",
			"keys": map[string]any{"p256dh": subP256DH, "auth": "short"}}}, "subscription.keys.auth"},
		{map[string]any{"platform": "fcm", "token": "t", "app": strings.Repeat("a", 256)}, "app"},
	} {
		var p api.Problem
		if resp := s.Do("POST", "/v1/recipients/u_1/devices", key, c.body, nil, &p); resp.StatusCode != 422 || len(p.Errors) != 1 || p.Errors[0].Field != c.field {
			t.Errorf("POST %v: %d %+v, want 422 naming %s", c.body, resp.StatusCode, p.Errors, c.field)
		}
	}
	if got := list(key, "u_1", 200); len(got) != 3 {
		t.Fatalf("refused registrations changed the devices: %+v", got)
	}
	register("nobody", map[string]any{"platform": "fcm", "token": "t"}, http.StatusNotFound)
	list(key, "nobody", http.StatusNotFound)
	list(other, "u_1", http.StatusNotFound)
	if resp := s.Do("DELETE", "/v1/recipients/u_1/devices/"+fcm.ID, other, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("another tenant removed a device: %d", resp.StatusCode)
	}

	// A token registered by another profile (a shared device, a new sign-in) moves to it.
	moved := register("u_2", map[string]any{"platform": "fcm", "token": "fcm-token-1"}, http.StatusOK)
	if moved.ID != fcm.ID || moved.Recipient != "u_2" || len(list(key, "u_1", 200)) != 2 || len(list(key, "u_2", 200)) != 1 {
		t.Fatalf("moved: %+v", moved)
	}
	if resp := s.Do("DELETE", "/v1/recipients/u_1/devices/"+fcm.ID, key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("removed through the profile it left: %d", resp.StatusCode)
	}
	if resp := s.Do("DELETE", "/v1/recipients/u_2/devices/"+fcm.ID, key, nil, nil, nil); resp.StatusCode != 204 || len(list(key, "u_2", 200)) != 0 {
		t.Fatalf("removed: %d", resp.StatusCode)
	}
	if resp := s.Do("DELETE", "/v1/recipients/u_2/devices/"+fcm.ID, key, nil, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("removed twice: %d", resp.StatusCode)
	}

	// A profile keeps the 20 seen last.
	var first api.Device
	for i := range 21 {
		d := register("u_2", map[string]any{"platform": "fcm", "token": fmt.Sprintf("t-%d", i)}, http.StatusCreated)
		if i == 0 {
			first = d
		}
	}
	got := list(key, "u_2", 200)
	if len(got) != 20 {
		t.Fatalf("u_2 keeps %d devices, want 20", len(got))
	}
	for _, d := range got {
		if d.ID == first.ID {
			t.Fatal("the device seen longest ago was kept")
		}
	}

	// A profile's devices go with it.
	if resp := s.Do("DELETE", "/v1/recipients/u_1", key, nil, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete profile: %d", resp.StatusCode)
	}
	s.Do("PUT", "/v1/recipients/u_1", key, map[string]any{}, nil, nil)
	if got := list(key, "u_1", 200); len(got) != 0 {
		t.Fatalf("a deleted profile's devices came back: %+v", got)
	}
}
