package fakeprovider

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webhook"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// Webhook is a tenant's endpoint: it verifies the Standard Webhooks signature with its secret
// (refusing with 401 otherwise) and records the message.
type Webhook struct {
	recorder
	*httptest.Server
	Secret string
	key    []byte
}

var webhookErrors = map[provider.Code]int{
	provider.AuthFailed:          401,
	provider.InvalidRecipient:    404,
	provider.RateLimited:         429,
	provider.ProviderUnavailable: 503,
	provider.ContentRejected:     422,
	provider.Timeout:             504,
}

// NewWebhook starts an endpoint with a fresh secret.
func NewWebhook() *Webhook {
	key := []byte(strings.Repeat("k", 32))
	f := &Webhook{Secret: "whsec_" + base64.StdEncoding.EncodeToString(key), key: key}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := standardwebhooks.Verify(f.key, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Type != "message.send" {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	if code, ok := f.failure(p.Data.To); ok {
		status := webhookErrors[code]
		if status == 0 {
			status = 400
		}
		if code == provider.RateLimited {
			w.Header().Set("Retry-After", "2")
		}
		http.Error(w, "refused: "+string(code), status)
		return
	}
	f.record(Received{To: p.Data.To, From: p.Data.From, Subject: p.Data.Subject, Text: p.Data.Text, HTML: p.Data.HTML,
		MessageID: p.Data.ID, ProviderMessageID: r.Header.Get("webhook-id"), Raw: string(body)})
	w.WriteHeader(http.StatusNoContent)
}
