// Package standardwebhooks signs and verifies HTTP deliveries per the Standard Webhooks
// specification (https://www.standardwebhooks.com): the webhook-id, webhook-timestamp and
// webhook-signature headers, v1 being HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the
// decoded whsec_ secret. comms signs its event deliveries and its custom webhook provider's sends
// with it; Resend's callbacks (Svix) use the same scheme; the Go client verifies with it.
package standardwebhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DecodeSecret decodes a Standard Webhooks secret: whsec_ then base64 of 24 to 64 bytes.
func DecodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New("must start with whsec_ followed by base64 (Standard Webhooks format)")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("must be whsec_ followed by standard base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("decodes to %d bytes; use 24 to 64 random bytes", len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one delivery.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's headers against key, accepting any of the space-separated v1
// signatures, with the timestamp within tolerance of now.
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return VerifyHeaders(key, "webhook-", h, body, now, tolerance)
}

// VerifyHeaders is Verify with the headers named prefix+id, prefix+timestamp, prefix+signature:
// "svix-" verifies Svix deliveries (Resend's), which use the same scheme.
func VerifyHeaders(key []byte, prefix string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsRaw, sigs := h.Get(prefix+"id"), h.Get(prefix+"timestamp"), h.Get(prefix+"signature")
	if id == "" || tsRaw == "" || sigs == "" {
		return fmt.Errorf("missing %sid, %stimestamp or %ssignature", prefix, prefix, prefix)
	}
	sec, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%stimestamp is not a Unix time", prefix)
	}
	ts := time.Unix(sec, 0)
	if ts.Before(now.Add(-tolerance)) || ts.After(now.Add(tolerance)) {
		return fmt.Errorf("%stimestamp outside the tolerance window", prefix)
	}
	want := Sign(key, id, ts, body)
	for _, s := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(s), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("no matching signature")
}
