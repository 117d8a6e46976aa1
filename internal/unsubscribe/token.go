// Package unsubscribe makes the signed links an email carries in List-Unsubscribe (RFC 8058) and
// serves them: the one-click POST a mailbox provider sends, and the preference page a person
// opens (docs/recipients.md#unsubscribe-links).
//
// A link names a tenant, a person (a recipient profile, or an address by its keyed hash: never
// the address itself) and a category, signed with a key derived from COMMS_ENCRYPTION_KEYS
// (secrets.Ring.Sign). The tenant is inside what is signed, so a link cannot be moved to another
// tenant; it names the key version it was signed with, so links sent before a key rotation keep
// working while the old key stays in the ring.
package unsubscribe

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/logicspike/comms/internal/platform/secrets"
)

// Token is what a link names.
type Token struct {
	TenantID string
	Subject  string // recipient:<id>, or address:<keyed hash>
	Category string
}

const purpose = "unsubscribe link"

// ErrInvalid is a link this deployment did not sign, or one altered since.
var ErrInvalid = errors.New("not a valid unsubscribe link")

// Encode signs t into a link's last path segment: payload.version.mac, each URL-safe.
func Encode(r *secrets.Ring, t Token) string {
	payload, _ := json.Marshal([]string{t.TenantID, t.Subject, t.Category}) // strings always encode
	version, mac := r.Sign(purpose, payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + version + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// Decode checks s's signature and returns what it names, or ErrInvalid.
func Decode(r *secrets.Ring, s string) (Token, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(s) > 1024 {
		return Token{}, ErrInvalid
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	mac, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || !r.Verify(parts[1], purpose, payload, mac) {
		return Token{}, ErrInvalid
	}
	var f []string
	if json.Unmarshal(payload, &f) != nil || len(f) != 3 || f[0] == "" || f[1] == "" || f[2] == "" {
		return Token{}, ErrInvalid
	}
	return Token{TenantID: f[0], Subject: f[1], Category: f[2]}, nil
}

// URL is the link for token under base, the public receiver's URL (COMMS_PUBLIC_WEBHOOK_URL).
func URL(base, token string) string { return strings.TrimRight(base, "/") + "/u/" + token }
