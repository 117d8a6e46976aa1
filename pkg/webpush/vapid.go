package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenLifetime is how long a VAPID token is valid: RFC 8292 §2 allows at most 24 hours; push
// services are strict about clocks, so comms asks for half that.
const TokenLifetime = 12 * time.Hour

// VAPID identifies an application server to push services (RFC 8292): a P-256 key pair, whose
// public half the browser subscribed with (applicationServerKey), and a contact.
type VAPID struct {
	key     *ecdsa.PrivateKey
	public  string
	subject string

	mu     sync.Mutex
	tokens map[string]token // by audience: a token is signed once an hour a push service, not once a push
}

type token struct {
	header  string
	expires time.Time
}

// maxTokens bounds the tokens kept: there are a handful of push services, but a subscription's
// endpoint is the browser's to choose.
const maxTokens = 1000

// GenerateVAPID makes a key pair, as base64url: the public key an uncompressed point (what a
// page passes as applicationServerKey), the private key the 32-byte scalar.
func GenerateVAPID() (public, private string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return "", "", err
	}
	priv, err := k.Bytes()
	if err != nil {
		return "", "", err
	}
	return base64.RawURLEncoding.EncodeToString(pub), base64.RawURLEncoding.EncodeToString(priv), nil
}

// NewVAPID reads a key pair as GenerateVAPID writes it, with the contact subject (mailto: or an
// https URL). The error names the bad field: subject, public_key or private_key.
func NewVAPID(subject, public, private string) (*VAPID, error) {
	if u, err := url.Parse(subject); err != nil || (u.Scheme != "mailto" || u.Opaque == "") && (u.Scheme != "https" || u.Host == "") {
		return nil, errors.New("subject: must be a mailto: address or an https URL to contact you at")
	}
	d, err := decode(private)
	if err != nil {
		return nil, errors.New("private_key: must be base64url")
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return nil, errors.New("private_key: must be a P-256 private key (32 bytes)")
	}
	pub, _ := key.PublicKey.Bytes()
	if p, err := decode(public); err != nil || string(p) != string(pub) {
		return nil, errors.New("public_key: is not the public half of private_key")
	}
	return &VAPID{key: key, public: base64.RawURLEncoding.EncodeToString(pub), subject: subject}, nil
}

// PublicKey is the public key, base64url: applicationServerKey in a page's subscribe call.
func (v *VAPID) PublicKey() string { return v.public }

// Authorization is the Authorization header for a request to endpoint made at now:
// "vapid t=<JWT>, k=<public key>" (RFC 8292 §3). A token is reused for its push service's origin
// until it has less than TokenLifetime-1h left.
func (v *VAPID) Authorization(endpoint string, now time.Time) (string, error) {
	aud, err := audience(endpoint)
	if err != nil {
		return "", err
	}
	v.mu.Lock()
	cached, ok := v.tokens[aud]
	v.mu.Unlock()
	if ok && now.Before(cached.expires.Add(-(TokenLifetime - time.Hour))) {
		return cached.header, nil
	}
	t, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"aud": aud, "exp": now.Add(TokenLifetime).Unix(), "sub": v.subject,
	}).SignedString(v.key)
	if err != nil {
		return "", fmt.Errorf("webpush: sign the VAPID token: %w", err)
	}
	header := "vapid t=" + t + ", k=" + v.public
	v.mu.Lock()
	if v.tokens == nil || len(v.tokens) >= maxTokens {
		v.tokens = map[string]token{}
	}
	v.tokens[aud] = token{header: header, expires: now.Add(TokenLifetime)}
	v.mu.Unlock()
	return header, nil
}

// Claims are what a push service learns from a valid VAPID header.
type Claims struct {
	PublicKey string // base64url; the key the subscription was made with
	Subject   string
	Expires   time.Time
}

// VerifyAuthorization checks a VAPID Authorization header as a push service does (RFC 8292 §4):
// signed by its key k, for endpoint's origin, not expired at now and not more than 24 hours
// ahead. For tests and local push services.
func VerifyAuthorization(header, endpoint string, now time.Time) (Claims, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return Claims{}, errors.New("webpush: not a vapid authorization")
	}
	var tok, k string
	for _, p := range strings.Split(rest, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "t":
			tok = val
		case "k":
			k = val
		}
	}
	raw, err := decode(k)
	if err != nil {
		return Claims{}, errors.New("webpush: k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return Claims{}, fmt.Errorf("webpush: k: %w", err)
	}
	aud, err := audience(endpoint)
	if err != nil {
		return Claims{}, err
	}
	var mc jwt.MapClaims
	_, err = jwt.ParseWithClaims(tok, &mc, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(aud), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return Claims{}, fmt.Errorf("webpush: token: %w", err)
	}
	exp, _ := mc.GetExpirationTime()
	if exp.Sub(now) > 24*time.Hour {
		return Claims{}, errors.New("webpush: token expires more than 24 hours ahead")
	}
	sub, _ := mc.GetSubject()
	return Claims{PublicKey: base64.RawURLEncoding.EncodeToString(raw), Subject: sub, Expires: exp.Time}, nil
}

// audience is the origin of a push endpoint, the aud of its tokens.
func audience(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("webpush: endpoint %q is not an http(s) URL", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}
