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
	return r.SignToken(purpose, t.TenantID, t.Subject, t.Category)
}

// Decode checks s's signature and returns what it names, or ErrInvalid.
func Decode(r *secrets.Ring, s string) (Token, error) {
	f, ok := r.OpenToken(purpose, s, 3)
	if !ok || len(s) > 1024 {
		return Token{}, ErrInvalid
	}
	return Token{TenantID: f[0], Subject: f[1], Category: f[2]}, nil
}

// URL is the link for token under base, the public receiver's URL (COMMS_PUBLIC_WEBHOOK_URL).
func URL(base, token string) string { return strings.TrimRight(base, "/") + "/u/" + token }
