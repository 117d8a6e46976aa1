// Package secrets seals provider credentials with AES-256-GCM under a versioned key ring, and
// signs what comms hands out and must recognise later (unsubscribe links) with keys derived from it.
//
// The ring comes from COMMS_ENCRYPTION_KEYS ("v2:<base64>,v1:<base64>", newest first). Sealing
// always uses the newest key and stores its version beside the ciphertext, so older ciphertexts stay
// readable while `commsctl keys rotate` re-seals them. The caller's additional data (the tenant and
// config ids) is authenticated but not stored: a ciphertext copied into another row fails to open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// ErrDecrypt is returned when a ciphertext does not open: wrong key, wrong additional data
// (copied between rows) or tampered bytes. The three are deliberately indistinguishable.
var ErrDecrypt = errors.New("secrets: ciphertext does not open with this key and context")

var versionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Ring is an ordered set of keys; the first is the one that seals.
type Ring struct {
	versions []string
	aeads    map[string]cipher.AEAD
	macKeys  map[string][]byte // per version: the key for Sign, derived so that it never equals the sealing key
}

// ParseRing parses "v2:<base64>,v1:<base64>" (standard or URL base64, 32 bytes each), newest
// first. Errors name the entry but never include key material.
func ParseRing(s string) (*Ring, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no keys: set COMMS_ENCRYPTION_KEYS to version:base64key[,older...], for example v1:$(openssl rand -base64 32)")
	}
	r := &Ring{aeads: map[string]cipher.AEAD{}, macKeys: map[string][]byte{}}
	for i, entry := range strings.Split(s, ",") {
		version, b64, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || !versionRE.MatchString(version) {
			return nil, fmt.Errorf("key %d: want version:base64key with a version of letters, digits, _ or -", i+1)
		}
		if _, dup := r.aeads[version]; dup {
			return nil, fmt.Errorf("key %d: version %q appears twice", i+1, version)
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", version, err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", version, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", version, err)
		}
		r.versions = append(r.versions, version)
		r.aeads[version] = aead
		r.macKeys[version] = hmacOf(key, []byte("comms signing key"))
	}
	return r, nil
}

func decodeKey(b64 string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(b64); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (AES-256)", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("is not valid base64")
}

// Current is the version new ciphertexts are sealed under.
func (r *Ring) Current() string { return r.versions[0] }

// Versions lists the ring's versions, newest first.
func (r *Ring) Versions() []string { return append([]string(nil), r.versions...) }

// Seal encrypts plaintext under the current key, binding it to aad. The result is nonce||ciphertext.
func (r *Ring) Seal(plaintext, aad []byte) (version string, sealed []byte, err error) {
	version = r.Current()
	aead := r.aeads[version]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	return version, aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned under version with the same aad.
func (r *Ring) Open(version string, sealed, aad []byte) ([]byte, error) {
	aead, ok := r.aeads[version]
	if !ok {
		return nil, fmt.Errorf("secrets: key version %q is not in the ring (COMMS_ENCRYPTION_KEYS lists %s)", version, strings.Join(r.versions, ", "))
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrDecrypt
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// Sign authenticates msg for purpose under the current key and returns the version and the MAC.
// A MAC made for one purpose does not verify for another.
func (r *Ring) Sign(purpose string, msg []byte) (version string, mac []byte) {
	version = r.Current()
	return version, r.mac(version, purpose, msg)
}

// Verify reports whether mac is Sign's for purpose and msg under version, which may be any key
// still in the ring: what was signed before a rotation verifies until its key leaves the ring.
func (r *Ring) Verify(version, purpose string, msg, mac []byte) bool {
	if _, ok := r.macKeys[version]; !ok {
		return false
	}
	return hmac.Equal(mac, r.mac(version, purpose, msg))
}

func (r *Ring) mac(version, purpose string, msg []byte) []byte {
	h := hmac.New(sha256.New, r.macKeys[version])
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(msg)
	return h.Sum(nil)
}

func hmacOf(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// GenerateKey returns a new entry for COMMS_ENCRYPTION_KEYS: version:base64key.
func GenerateKey(version string) (string, error) {
	if !versionRE.MatchString(version) {
		return "", fmt.Errorf("version %q: use letters, digits, _ or -", version)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return version + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// SignToken signs fields (for purpose) into a URL-safe token, payload.version.mac: the fields travel in
// the clear, so they must not be secret, but none of them can be changed without the token
// failing OpenToken.
func (r *Ring) SignToken(purpose string, fields ...string) string {
	payload, _ := json.Marshal(fields) // strings always encode
	version, mac := r.Sign(purpose, payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + version + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// OpenToken returns the n fields SignToken signed into token for purpose, each non-empty, or false for a
// token this ring did not seal (or one altered since, or of another purpose).
func (r *Ring) OpenToken(purpose, token string, n int) ([]string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 2048 {
		return nil, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	mac, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || !r.Verify(parts[1], purpose, payload, mac) {
		return nil, false
	}
	var f []string
	if json.Unmarshal(payload, &f) != nil || len(f) != n || slices.Contains(f, "") {
		return nil, false
	}
	return f, true
}
