// Package webpush implements what a Web Push sender needs of the standards: the payload
// encryption of RFC 8291 (the aes128gcm content coding of RFC 8188, in one record) and the VAPID
// authorization of RFC 8292. It decrypts too, as a browser does, for tests and local fakes.
package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	saltLen    = 16
	keyLen     = 65 // an uncompressed P-256 point
	authLen    = 16
	headerLen  = saltLen + 4 + 1 + keyLen
	tagLen     = 16
	recordSize = 4096
	// MaxBody is the largest body a push service must accept (RFC 8030 §7.2).
	MaxBody = 4096
	// MaxPlaintext is the most a message may carry: MaxBody less the header, the padding
	// delimiter and the tag (RFC 8291 §4).
	MaxPlaintext = MaxBody - headerLen - 1 - tagLen
)

// Keys are a subscription's keys, as a browser's PushSubscription gives them: p256dh, the user
// agent's public key (an uncompressed P-256 point), and auth, its 16-byte secret.
type Keys struct {
	P256DH []byte
	Auth   []byte
}

// ParseKeys decodes a PushSubscription's keys (base64url, with or without padding) and checks
// them: p256dh a point on P-256, auth 16 bytes. The error names the bad key.
func ParseKeys(p256dh, auth string) (Keys, error) {
	k := Keys{}
	var err error
	if k.P256DH, err = decode(p256dh); err != nil || len(k.P256DH) != keyLen {
		return Keys{}, errors.New("p256dh: must be a base64url uncompressed P-256 public key (65 bytes)")
	}
	if _, err := ecdh.P256().NewPublicKey(k.P256DH); err != nil {
		return Keys{}, errors.New("p256dh: is not a point on P-256")
	}
	if k.Auth, err = decode(auth); err != nil || len(k.Auth) != authLen {
		return Keys{}, errors.New("auth: must be a base64url secret of 16 bytes")
	}
	return k, nil
}

// Encrypt encrypts plaintext for the subscription whose keys are k, with a fresh sender key and
// salt, and returns the body to POST with Content-Encoding: aes128gcm.
func Encrypt(k Keys, plaintext []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encrypt(k, plaintext, as, salt)
}

// encrypt is Encrypt with the sender's key pair and the salt given, as RFC 8291's example gives
// them.
func encrypt(k Keys, plaintext []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("webpush: a message is at most %d bytes, this one is %d", MaxPlaintext, len(plaintext))
	}
	ua, err := ecdh.P256().NewPublicKey(k.P256DH)
	if err != nil {
		return nil, fmt.Errorf("webpush: p256dh: %w", err)
	}
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, fmt.Errorf("webpush: key agreement: %w", err)
	}
	asPublic := as.PublicKey().Bytes()
	aead, nonce, err := contentKeys(shared, k.Auth, k.P256DH, asPublic, salt)
	if err != nil {
		return nil, err
	}
	body := make([]byte, headerLen, headerLen+len(plaintext)+1+tagLen)
	copy(body, salt)
	binary.BigEndian.PutUint32(body[saltLen:], recordSize)
	body[saltLen+4] = keyLen
	copy(body[saltLen+5:], asPublic)
	// One record, so its padding delimiter is 2, the last record's (RFC 8188 §2).
	record := append(append(make([]byte, 0, len(plaintext)+1), plaintext...), 2)
	return aead.Seal(body, nonce, record, nil), nil
}

// Decrypt opens a body sent to the subscription whose private key is ua and auth secret auth,
// as the browser does (RFC 8291 §3.4): for tests and local push services.
func Decrypt(ua *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if len(body) < headerLen+tagLen+1 {
		return nil, errors.New("webpush: body shorter than its header")
	}
	salt, idlen := body[:saltLen], int(body[saltLen+4])
	if idlen != keyLen {
		return nil, fmt.Errorf("webpush: key id of %d bytes, want a %d-byte public key", idlen, keyLen)
	}
	if rs := binary.BigEndian.Uint32(body[saltLen:]); int(rs) < len(body)-headerLen {
		return nil, fmt.Errorf("webpush: a body of more than one record (rs %d) is not supported", rs)
	}
	asPublic := body[saltLen+5 : headerLen]
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("webpush: sender key: %w", err)
	}
	shared, err := ua.ECDH(as)
	if err != nil {
		return nil, fmt.Errorf("webpush: key agreement: %w", err)
	}
	aead, nonce, err := contentKeys(shared, auth, ua.PublicKey().Bytes(), asPublic, salt)
	if err != nil {
		return nil, err
	}
	record, err := aead.Open(nil, nonce, body[headerLen:], nil)
	if err != nil {
		return nil, fmt.Errorf("webpush: decrypt: %w", err)
	}
	// Padding is zeros after the delimiter.
	i := len(record) - 1
	for i >= 0 && record[i] == 0 {
		i--
	}
	if i < 0 || record[i] != 2 {
		return nil, errors.New("webpush: the record has no last-record delimiter")
	}
	return record[:i], nil
}

// contentKeys derives the AES-128-GCM key and nonce of RFC 8291 §3.3-3.4 from the ECDH secret.
func contentKeys(shared, auth, uaPublic, asPublic, salt []byte) (cipher.AEAD, []byte, error) {
	info := append(append([]byte("WebPush: info\x00"), uaPublic...), asPublic...)
	ikm, err := hkdf.Key(sha256.New, shared, auth, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	return aead, nonce, err
}

// decode reads base64url with or without padding, as browsers and libraries write keys.
func decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(trimPadding(s))
}

func trimPadding(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}
