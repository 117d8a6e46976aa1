package fakeprovider

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webpush"
	wp "github.com/logicspike/comms/pkg/webpush"
)

// WebPush is a browser's push service (RFC 8030) and the browsers subscribed to it: Subscribe
// makes a subscription as a browser does (its own P-256 key pair and auth secret), and each push
// is checked as a push service checks it (the VAPID token for the endpoint's origin, signed by the
// key the subscription was made with; a TTL) and then decrypted with the subscriber's private key,
// as the browser does. Received holds the decrypted notifications: To is the endpoint.
type WebPush struct {
	recorder
	*httptest.Server
	// DecryptLater, set before the first push, has the browsers decrypt what they were sent only
	// when Received is called, as a load generator wants: a browser decrypts on its own machine,
	// not on the push service's. Each push is still checked (VAPID, headers, size) and answered at
	// once, and Pushes counts them meanwhile.
	DecryptLater bool
	mu           sync.Mutex
	subs         map[string]*subscriber // by endpoint
	verified     map[string]wp.Claims   // by Authorization and origin: push services check a token once
	pending      []push                 // accepted, not yet decrypted (DecryptLater)
}

// push is one accepted push message as the push service holds it.
type push struct {
	sub                *subscriber
	endpoint, location string
	body               []byte
	extra              map[string]string
	at                 time.Time
}

type subscriber struct {
	key      *ecdh.PrivateKey
	auth     []byte
	appKey   string // the applicationServerKey it subscribed with ("" for any)
	gone     bool
	payloads []webpush.Payload
}

// Subscription is a PushSubscription as a browser serializes it.
type Subscription = api.PushSubscription

// NewWebPush starts a push service.
func NewWebPush() *WebPush {
	f := &WebPush{subs: map[string]*subscriber{}, verified: map[string]wp.Claims{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// Subscribe makes a browser's subscription for a page whose applicationServerKey is appKey
// (a config's vapid_public_key; "" accepts any key).
func (f *WebPush) Subscribe(appKey string) Subscription {
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	var s Subscription
	s.Endpoint = f.URL + "/wpush/" + ids.Random(24)
	s.Keys.P256DH = base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
	s.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	f.mu.Lock()
	f.subs[s.Endpoint] = &subscriber{key: key, auth: auth, appKey: appKey}
	f.mu.Unlock()
	return s
}

// Unsubscribe is the browser dropping the subscription: its endpoint answers 410 Gone from now on.
func (f *WebPush) Unsubscribe(endpoint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.subs[endpoint]; s != nil {
		s.gone = true
	}
}

// Payloads are the notifications a subscription received, decrypted, in order.
func (f *WebPush) Payloads(endpoint string) []webpush.Payload {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.subs[endpoint]; s != nil {
		return append([]webpush.Payload(nil), s.payloads...)
	}
	return nil
}

var webPushErrors = map[provider.Code]int{
	provider.AuthFailed:          401,
	provider.InvalidRecipient:    410,
	provider.RateLimited:         429,
	provider.ProviderUnavailable: 503,
	provider.ContentRejected:     413,
	provider.Timeout:             504,
}

func (f *WebPush) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := "http://" + r.Host + r.URL.Path
	if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/wpush/") {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	sub := f.subs[endpoint]
	f.mu.Unlock()
	if sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if sub.gone {
		http.Error(w, "push subscription has unsubscribed or expired", http.StatusGone)
		return
	}
	if r.Header.Get("TTL") == "" || r.Header.Get("Content-Encoding") != "aes128gcm" {
		http.Error(w, "TTL and Content-Encoding: aes128gcm are required", http.StatusBadRequest)
		return
	}
	claims, err := f.verify(r.Header.Get("Authorization"), endpoint)
	if err != nil {
		http.Error(w, "authorization: "+err.Error(), http.StatusUnauthorized)
		return
	}
	if sub.appKey != "" && claims.PublicKey != sub.appKey {
		http.Error(w, "the VAPID key does not match the one the subscription was made with", http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, wp.MaxBody+1))
	if len(body) > wp.MaxBody {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	location := f.URL + "/m/" + ids.Random(20) // the push message resource
	p := push{sub: sub, endpoint: endpoint, location: location, body: body, at: time.Now(),
		extra: map[string]string{"TTL": r.Header.Get("TTL"), "Urgency": r.Header.Get("Urgency"), "Topic": r.Header.Get("Topic"), "VAPID-Key": claims.PublicKey}}
	var (
		pl    webpush.Payload
		plain []byte
	)
	if !f.DecryptLater {
		if pl, plain, err = p.open(); err != nil {
			http.Error(w, "the browser could not decrypt it: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if code, ok := f.failure(endpoint); ok {
		status := webPushErrors[code]
		if status == 0 {
			status = 400
		}
		if code == provider.RateLimited {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, string(code), status)
		return
	}
	if f.DecryptLater {
		f.mu.Lock()
		f.pending = append(f.pending, p)
		f.mu.Unlock()
	} else {
		f.accept(p, pl, plain)
	}
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
}

// open decrypts a push as its browser does.
func (p push) open() (webpush.Payload, []byte, error) {
	var pl webpush.Payload
	plain, err := wp.Decrypt(p.sub.key, p.sub.auth, p.body)
	if err != nil {
		return pl, nil, err
	}
	if err := json.Unmarshal(plain, &pl); err != nil {
		return pl, plain, fmt.Errorf("payload is not JSON: %w", err)
	}
	return pl, plain, nil
}

// accept records a push its browser decrypted.
func (f *WebPush) accept(p push, pl webpush.Payload, plain []byte) {
	f.mu.Lock()
	p.sub.payloads = append(p.sub.payloads, pl)
	f.mu.Unlock()
	f.record(Received{To: p.endpoint, Subject: pl.Title, Text: pl.Body, MessageID: pl.ID, ProviderMessageID: p.location,
		Raw: string(plain), Extra: p.extra, At: p.at})
}

// Pushes counts the pushes accepted so far, decrypted or not.
func (f *WebPush) Pushes() int {
	f.mu.Lock()
	n := len(f.pending)
	f.mu.Unlock()
	return n + f.accepted()
}

// Received returns what the browsers received, in order, decrypting what waits (DecryptLater;
// a push its browser could not decrypt has Extra["error"] and no MessageID).
func (f *WebPush) Received() []Received {
	f.mu.Lock()
	pending := f.pending
	f.pending = nil
	f.mu.Unlock()
	for _, p := range pending {
		pl, plain, err := p.open()
		if err != nil {
			p.extra["error"] = "the browser could not decrypt it: " + err.Error()
		}
		f.accept(p, pl, plain)
	}
	return f.recorder.Received()
}

// verify checks a VAPID header for endpoint, once a token and origin while it is valid.
func (f *WebPush) verify(header, endpoint string) (wp.Claims, error) {
	key := header + "|" + f.URL
	f.mu.Lock()
	c, ok := f.verified[key]
	f.mu.Unlock()
	if ok && time.Now().Before(c.Expires) {
		return c, nil
	}
	c, err := wp.VerifyAuthorization(header, endpoint, time.Now())
	if err != nil {
		return c, err
	}
	f.mu.Lock()
	f.verified[key] = c
	f.mu.Unlock()
	return c, nil
}
