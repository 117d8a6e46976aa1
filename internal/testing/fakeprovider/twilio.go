package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/logicspike/comms/pkg/provider"
)

// Twilio is a fake of the Messages API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json with
// HTTP basic auth (Account SID, Auth Token) and a form body, answering Twilio's JSON.
type Twilio struct {
	recorder
	*httptest.Server
	AccountSID, AuthToken string
	n                     atomic.Int64
}

// Twilio's error codes for each class (https://www.twilio.com/docs/api/errors).
var twilioErrors = map[provider.Code]struct {
	status, code int
	msg          string
}{
	provider.AuthFailed:          {401, 20003, "Authenticate"},
	provider.InsufficientFunds:   {401, 20005, "Account not active"},
	provider.InvalidRecipient:    {400, 21211, "Invalid 'To' Phone Number"},
	provider.InvalidSender:       {400, 21606, "The From phone number is not a valid, SMS-capable inbound phone number or short code for your account."},
	provider.RateLimited:         {429, 20429, "Too Many Requests"},
	provider.ProviderUnavailable: {503, 20500, "Service Unavailable"},
	provider.ContentRejected:     {400, 30007, "Message filtered"},
}

var twilioPath = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$`)

// NewTwilio starts a fake for one account.
func NewTwilio() *Twilio {
	f := &Twilio{AccountSID: "AC" + strings.Repeat("0123456789abcdef", 2), AuthToken: strings.Repeat("7f", 16)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": msg, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func (f *Twilio) serve(w http.ResponseWriter, r *http.Request) {
	m := twilioPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodPost || m == nil {
		twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != f.AccountSID || pass != f.AuthToken || m[1] != f.AccountSID {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		twilioError(w, 400, 20001, "content type must be form encoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, 400, 20001, "bad form")
		return
	}
	to, from, svc, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("MessagingServiceSid"), r.PostForm.Get("Body")
	if code, ok := f.failure(to); ok {
		e := twilioErrors[code]
		twilioError(w, e.status, e.code, e.msg)
		return
	}
	switch {
	case to == "":
		twilioError(w, 400, 21604, "A 'To' phone number is required.")
		return
	case !regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`).MatchString(to):
		twilioError(w, 400, 21211, "The 'To' number "+to+" is not a valid phone number.")
		return
	case from == "" && svc == "":
		twilioError(w, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	case body == "":
		twilioError(w, 400, 21602, "Message body is required.")
		return
	}
	sid := fmt.Sprintf("SM%032x", f.n.Add(1))
	f.record(Received{To: to, From: from, Text: body, ProviderMessageID: sid,
		Extra: map[string]string{"StatusCallback": r.PostForm.Get("StatusCallback"), "MessagingServiceSid": svc}, Raw: r.PostForm.Encode()})
	now := time.Now().UTC().Format(time.RFC1123Z)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"account_sid": f.AccountSID, "api_version": "2010-04-01", "body": body, "date_created": now,
		"date_sent": nil, "date_updated": now, "direction": "outbound-api", "error_code": nil, "error_message": nil,
		"from": from, "messaging_service_sid": nilIfEmpty(svc), "num_media": "0", "num_segments": "1",
		"price": "-0.00790", "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
		"uri": "/2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + ".json",
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
