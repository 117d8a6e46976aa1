package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
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
	// PriceLater answers sends with "price": null, as Twilio does until it has priced the
	// message, and reports the price when the message is fetched: from the second fetch on, so
	// that a fetcher must try again.
	PriceLater bool
	fetches    sync.Map // sid → fetches so far
	stopped    sync.Map // recipients who replied STOP
	nums       twilioNumbers
}

// Stop makes recipient one who replied STOP: every send to it is refused with 21610.
func (f *Twilio) Stop(recipient string) { f.stopped.Store(recipient, true) }

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

var (
	twilioPath      = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$`)
	twilioFetchPath = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages/(SM[0-9a-f]{32})\.json$`)
)

// TwilioPrice is what the fake charges for every message.
const TwilioPrice = "-0.00790"

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
	if f.serveNumbers(w, r) {
		return
	}
	if fm := twilioFetchPath.FindStringSubmatch(r.URL.Path); fm != nil && r.Method == http.MethodGet {
		f.fetch(w, r, fm[1], fm[2])
		return
	}
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
	if _, stopped := f.stopped.Load(to); stopped {
		twilioError(w, 400, 21610, "Attempt to send to unsubscribed recipient")
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
		"price": f.price(), "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
		"uri": "/2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + ".json",
	})
}

func (f *Twilio) price() any {
	if f.PriceLater {
		return nil
	}
	return TwilioPrice
}

// fetch answers GET .../Messages/{sid}.json for a message the fake sent.
func (f *Twilio) fetch(w http.ResponseWriter, r *http.Request, account, sid string) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != f.AccountSID || pass != f.AuthToken || account != f.AccountSID {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	var sent *Received
	for _, m := range f.Received() {
		if m.ProviderMessageID == sid {
			sent = &m
		}
	}
	if sent == nil {
		twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	n, _ := f.fetches.LoadOrStore(sid, new(atomic.Int64))
	var price any = TwilioPrice
	if f.PriceLater && n.(*atomic.Int64).Add(1) < 2 {
		price = nil
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"account_sid": f.AccountSID, "api_version": "2010-04-01", "body": sent.Text, "direction": "outbound-api",
		"from": sent.From, "num_segments": "1", "price": price, "price_unit": "USD", "sid": sid, "status": "delivered", "to": sent.To,
		"uri": "/2010-04-01/Accounts/" + f.AccountSID + "/Messages/" + sid + ".json",
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
