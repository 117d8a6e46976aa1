package fakeprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/provider"
)

// APNs is the Apple Push Notification service's HTTP/2 API over TLS: it takes only HTTP/2,
// verifies each request's provider token (ES256, signed by the team's key named in kid, issued by
// the team, not older than an hour) and topic, and answers APNs' reasons as Apple does. Use
// RootCAs to trust it. Received's To is the device token; Extra holds the apns-* headers.
type APNs struct {
	recorder
	*httptest.Server
	KeyID, TeamID, Topic string
	key                  *ecdsa.PrivateKey
	mu                   sync.Mutex
	tokens               map[string]bool // the provider tokens seen
}

// NewAPNs starts APNs with a fresh team key.
func NewAPNs() *APNs {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &APNs{KeyID: "ABC123DEFG", TeamID: "DEF123GHIJ", Topic: "com.acme.app", key: key, tokens: map[string]bool{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.EnableHTTP2 = true
	f.StartTLS()
	return f
}

// P8 is a team key as the Apple Developer site downloads it (AuthKey_<kid>.p8); key signs it
// instead of the team's own when not nil (a key Apple does not know).
func (f *APNs) P8(key *ecdsa.PrivateKey) string {
	if key == nil {
		key = f.key
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// RootCAs trusts the fake's certificate.
func (f *APNs) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(f.Certificate())
	return pool
}

// ProviderTokens counts the distinct provider tokens used.
func (f *APNs) ProviderTokens() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.tokens) }

// apnsReasons is how APNs answers each failure class.
var apnsReasons = map[provider.Code]struct {
	status int
	reason string
}{
	provider.InvalidRecipient:    {410, "Unregistered"},
	provider.AuthFailed:          {403, "InvalidProviderToken"},
	provider.RateLimited:         {429, "TooManyRequests"},
	provider.ProviderUnavailable: {503, "ServiceUnavailable"},
	provider.ContentRejected:     {413, "PayloadTooLarge"},
	provider.InvalidSender:       {400, "BadTopic"},
}

func apnsFail(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("apns-id", ids.Random(16))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"reason": reason}
	if status == 410 {
		body["timestamp"] = time.Now().UnixMilli()
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (f *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		http.Error(w, "APNs takes HTTP/2 only", http.StatusHTTPVersionNotSupported)
		return
	}
	device, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost || !ok {
		apnsFail(w, 404, "BadPath")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		apnsFail(w, 403, "MissingProviderToken")
		return
	}
	var claims jwt.MapClaims
	parsed, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(f.TeamID), jwt.WithIssuedAt())
	if err != nil || parsed.Header["kid"] != f.KeyID {
		apnsFail(w, 403, "InvalidProviderToken")
		return
	}
	if iat, _ := claims.GetIssuedAt(); iat == nil || time.Since(iat.Time) > time.Hour {
		apnsFail(w, 403, "ExpiredProviderToken")
		return
	}
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	if r.Header.Get("apns-topic") != f.Topic {
		apnsFail(w, 400, "DeviceTokenNotForTopic")
		return
	}
	if len(device) != 64 || strings.Trim(device, "0123456789abcdef") != "" {
		apnsFail(w, 400, "BadDeviceToken")
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if len(raw) > 4096 {
		apnsFail(w, 413, "PayloadTooLarge")
		return
	}
	var p struct {
		APS struct {
			Alert struct{ Title, Body string }
		} `json:"aps"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		apnsFail(w, 400, "PayloadEmpty")
		return
	}
	if code, ok := f.failure(device); ok {
		a := apnsReasons[code]
		if a.status == 0 {
			a.status, a.reason = 500, "InternalServerError"
		}
		apnsFail(w, a.status, a.reason)
		return
	}
	id := strings.ToUpper(ids.Random(8) + "-0000-0000-0000-" + ids.Random(12))
	f.record(Received{To: device, Subject: p.APS.Alert.Title, Text: p.APS.Alert.Body, ProviderMessageID: id, Raw: string(raw),
		Extra: map[string]string{"apns-priority": r.Header.Get("apns-priority"), "apns-collapse-id": r.Header.Get("apns-collapse-id"),
			"apns-push-type": r.Header.Get("apns-push-type"), "apns-expiration": r.Header.Get("apns-expiration")}})
	w.Header().Set("apns-id", id)
	w.WriteHeader(http.StatusOK)
}
