package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/logicspike/comms/pkg/provider"
)

// Resend is a fake of POST /emails with bearer-key auth and Resend's error body
// {"statusCode","name","message"}. It honours Idempotency-Key as Resend does: a repeated key
// returns the first email's id without sending again.
type Resend struct {
	recorder
	*httptest.Server
	APIKey string
	n      atomic.Int64
	seen   map[string]string
}

var resendErrors = map[provider.Code]struct {
	status     int
	name, msg  string
	retryAfter string
}{
	provider.AuthFailed:          {403, "invalid_api_key", "API key is invalid", ""},
	provider.InsufficientFunds:   {429, "monthly_quota_exceeded", "You have reached your monthly email sending quota.", ""},
	provider.InvalidRecipient:    {422, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` format.", ""},
	provider.InvalidSender:       {403, "validation_error", "You can only send testing emails to your own email address. Verify a domain to send to other recipients.", ""},
	provider.RateLimited:         {429, "rate_limit_exceeded", "Too many requests. You can only make 2 requests per second.", "1"},
	provider.ProviderUnavailable: {500, "internal_server_error", "An unexpected error occurred.", ""},
	provider.ContentRejected:     {422, "missing_required_field", "Missing `html` or `text` field.", ""},
}

// NewResend starts a fake for one API key.
func NewResend() *Resend {
	f := &Resend{APIKey: "re_FakeKey_0123456789abcdef", seen: map[string]string{}} //nolint:gosec // the fake's own key
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func resendError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "name": name, "message": msg})
}

func (f *Resend) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/emails" {
		resendError(w, 404, "not_found", "The requested endpoint does not exist.")
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		resendError(w, 401, "missing_api_key", "Missing API key in the authorization header.")
		return
	case auth != "Bearer "+f.APIKey:
		resendError(w, 403, "invalid_api_key", "API key is invalid")
		return
	}
	var req struct {
		From    string   `json:"from"`
		To      []string `json:"to"`
		Subject string   `json:"subject"`
		Text    string   `json:"text"`
		HTML    string   `json:"html"`
		Tags    []struct {
			Name, Value string
		} `json:"tags"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		resendError(w, 422, "validation_error", "Invalid JSON body.")
		return
	}
	if len(req.To) != 1 {
		resendError(w, 422, "validation_error", "fake expects one `to` address")
		return
	}
	if code, ok := f.failure(req.To[0]); ok {
		e := resendErrors[code]
		if e.retryAfter != "" {
			w.Header().Set("Retry-After", e.retryAfter)
		}
		resendError(w, e.status, e.name, e.msg)
		return
	}
	if req.Text == "" && req.HTML == "" {
		resendError(w, 422, "missing_required_field", "Missing `html` or `text` field.")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	id, dup := f.seen[key]
	if !dup {
		id = fmt.Sprintf("4ef9a417-02e9-4d39-ad75-%012d", f.n.Add(1))
		if key != "" {
			f.seen[key] = id
		}
	}
	f.mu.Unlock()
	if !dup {
		rec := Received{To: req.To[0], From: req.From, Subject: req.Subject, Text: req.Text, HTML: req.HTML, ProviderMessageID: id,
			Extra: map[string]string{"Idempotency-Key": key}}
		for k, v := range req.Headers {
			rec.Extra[k] = v
		}
		for _, t := range req.Tags {
			if t.Name == "comms_message_id" {
				rec.MessageID = t.Value
			}
		}
		f.record(rec)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
}
