package fakeprovider

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/logicspike/comms/pkg/ids"
	"github.com/logicspike/comms/pkg/provider"
)

// FCM is Firebase Cloud Messaging's HTTP v1 API and Google's OAuth 2.0 token endpoint. The token
// endpoint takes a JWT-bearer grant and verifies the assertion's RS256 signature with the service
// account's public key, its issuer, audience, scope and lifetime, as Google does; the send
// endpoint takes only the access tokens it issued, for the account's project, and answers FCM's
// success and error bodies (google.rpc.Status with FcmError details).
type FCM struct {
	recorder
	*httptest.Server
	ProjectID, ClientEmail string
	key                    *rsa.PrivateKey
	mu                     sync.Mutex
	tokens                 map[string]time.Time // access token → expiry
	tokenRequests          int
	validated              int
}

// rsaKeys are made once a process: a 2048-bit key takes long to make (seconds under the race
// detector), and the fakes' tests need only that the keys differ.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

// UnknownRSAKey is a service account key Google does not know (it signs nothing FCM accepts).
func UnknownRSAKey() *rsa.PrivateKey { return rsaKeys()[1] }

// NewFCM starts FCM with a service account.
func NewFCM() *FCM { return NewFCMOn(nil) }

// NewFCMOn starts FCM on ln (nil: a port of its own): a stack started before it can be pointed
// at a known address (loadgen push -platform fcm).
func NewFCMOn(ln net.Listener) *FCM {
	key := rsaKeys()[0]
	f := &FCM{ProjectID: "comms-test", ClientEmail: "comms@comms-test.iam.gserviceaccount.com", key: key, tokens: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.Server = httptest.NewUnstartedServer(mux)
	if ln != nil {
		_ = f.Server.Listener.Close()
		f.Server.Listener = ln
	}
	f.Server.Start()
	return f
}

// ServiceAccount is the account's key file as the Firebase console downloads it; key signs it
// instead of the account's own key when not nil (a key Google does not know).
func (f *FCM) ServiceAccount(key *rsa.PrivateKey) string {
	if key == nil {
		key = f.key
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	b, _ := json.MarshalIndent(map[string]string{"type": "service_account", "project_id": f.ProjectID, "private_key_id": "k1",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "client_email": f.ClientEmail,
		"token_uri": "https://oauth2.googleapis.com/token"}, "", "  ") // as downloaded: on several lines
	return string(b)
}

// TokenRequests counts the access tokens asked for.
func (f *FCM) TokenRequests() int { f.mu.Lock(); defer f.mu.Unlock(); return f.tokenRequests }

// Validated counts the sends FCM validated without delivering (validate_only).
func (f *FCM) Validated() int { f.mu.Lock(); defer f.mu.Unlock(); return f.validated }

func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokenRequests++
	f.mu.Unlock()
	refuse := func(desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": desc})
	}
	if r.PostFormValue("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		refuse("grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer")
		return
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(r.PostFormValue("assertion"), &claims, func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(f.URL+"/token"), jwt.WithIssuer(f.ClientEmail),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		refuse("Invalid JWT Signature.")
		return
	}
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	scope, _ := claims["scope"].(string)
	if exp.Sub(iat.Time) > time.Hour || !strings.Contains(" "+scope+" ", " https://www.googleapis.com/auth/firebase.messaging ") {
		refuse("Invalid JWT: the lifetime is at most an hour and the scope must include firebase.messaging")
		return
	}
	tok := "ya29." + ids.Random(40)
	f.mu.Lock()
	f.tokens[tok] = time.Now().Add(time.Hour)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

// fcmStatus is how FCM answers each failure class: HTTP status, google.rpc status, FcmError code.
var fcmStatus = map[provider.Code]struct {
	http           int
	status, fcmErr string
}{
	provider.InvalidRecipient:    {404, "NOT_FOUND", "UNREGISTERED"},
	provider.RateLimited:         {429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"},
	provider.ProviderUnavailable: {503, "UNAVAILABLE", "UNAVAILABLE"},
	provider.ContentRejected:     {400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"},
	provider.AuthFailed:          {401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"},
}

func fcmFail(w http.ResponseWriter, status int, rpcStatus, fcmErr, msg string) {
	body := map[string]any{"code": status, "message": msg, "status": rpcStatus}
	if fcmErr != "" {
		body["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmErr}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	exp, ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok || time.Now().After(exp) {
		fcmFail(w, 401, "UNAUTHENTICATED", "", "Request had invalid authentication credentials.")
		return
	}
	if r.PathValue("project") != f.ProjectID {
		fcmFail(w, 403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "Permission denied on the project.")
		return
	}
	var req struct {
		ValidateOnly bool `json:"validate_only"`
		Message      struct {
			Token, Topic string
			Notification *struct{ Title, Body string }
			Data         map[string]string
		} `json:"message"`
	}
	raw := new(strings.Builder)
	if err := json.NewDecoder(io.TeeReader(io.LimitReader(r.Body, 64<<10), raw)).Decode(&req); err != nil || (req.Message.Token == "") == (req.Message.Topic == "") {
		fcmFail(w, 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument: exactly one of token and topic.")
		return
	}
	name := "projects/" + f.ProjectID + "/messages/0:" + ids.Random(16)
	if req.ValidateOnly {
		f.mu.Lock()
		f.validated++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"name": "projects/" + f.ProjectID + "/messages/fake_message_id"})
		return
	}
	if code, ok := f.failure(req.Message.Token); ok {
		s := fcmStatus[code]
		if s.http == 0 {
			s.http, s.status = 500, "INTERNAL"
		}
		if code == provider.RateLimited {
			w.Header().Set("Retry-After", "1")
		}
		fcmFail(w, s.http, s.status, s.fcmErr, string(code))
		return
	}
	rec := Received{To: req.Message.Token, ProviderMessageID: name, Raw: raw.String()}
	if n := req.Message.Notification; n != nil {
		rec.Subject, rec.Text = n.Title, n.Body
	}
	f.record(rec)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"name": name})
}
