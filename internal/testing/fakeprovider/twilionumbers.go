package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// The account's phone numbers and Messaging Services, as much of Twilio's API as Save & Test
// uses to point them at comms: GET IncomingPhoneNumbers.json?PhoneNumber=…, POST
// IncomingPhoneNumbers/{Sid}.json (SmsUrl, SmsMethod), and POST messaging.twilio.com's
// /v1/Services/{Sid} (InboundRequestUrl, InboundMethod).
type twilioNumbers struct {
	mu       sync.Mutex
	numbers  map[string]*twilioNumber // by phone number
	services map[string]*twilioService
}

type twilioNumber struct {
	Sid       string `json:"sid"`
	Account   string `json:"account_sid"`
	Phone     string `json:"phone_number"`
	SMSURL    string `json:"sms_url"`
	SMSMethod string `json:"sms_method"`
}

type twilioService struct {
	Sid          string `json:"sid"`
	Account      string `json:"account_sid"`
	InboundURL   string `json:"inbound_request_url"`
	Method       string `json:"inbound_method"`
	UseNumbers   bool   `json:"use_inbound_webhook_on_number"`
	FriendlyName string `json:"friendly_name"`
}

var (
	twilioNumbersPath = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/IncomingPhoneNumbers\.json$`)
	twilioNumberPath  = regexp.MustCompile(`^/2010-04-01/Accounts/(AC[0-9a-f]{32})/IncomingPhoneNumbers/(PN[0-9a-f]{32})\.json$`)
	twilioServicePath = regexp.MustCompile(`^/v1/Services/(MG[0-9a-f]{32})$`)
)

// AddNumber makes phone a number of the fake's account, with no SMS webhook yet.
func (f *Twilio) AddNumber(phone string) {
	f.nums.mu.Lock()
	defer f.nums.mu.Unlock()
	if f.nums.numbers == nil {
		f.nums.numbers = map[string]*twilioNumber{}
	}
	sid := fmt.Sprintf("PN%032x", len(f.nums.numbers)+1)
	f.nums.numbers[phone] = &twilioNumber{Sid: sid, Account: f.AccountSID, Phone: phone}
}

// AddService makes sid a Messaging Service of the fake's account; useNumbers is its
// use_inbound_webhook_on_number.
func (f *Twilio) AddService(sid string, useNumbers bool) {
	f.nums.mu.Lock()
	defer f.nums.mu.Unlock()
	if f.nums.services == nil {
		f.nums.services = map[string]*twilioService{}
	}
	f.nums.services[sid] = &twilioService{Sid: sid, Account: f.AccountSID, UseNumbers: useNumbers, FriendlyName: "service"}
}

// SMSWebhook is where phone's incoming messages go, and with which method ("" when unset).
func (f *Twilio) SMSWebhook(phone string) (url, method string) {
	f.nums.mu.Lock()
	defer f.nums.mu.Unlock()
	if n := f.nums.numbers[phone]; n != nil {
		return n.SMSURL, n.SMSMethod
	}
	return "", ""
}

// ServiceInbound is where the Messaging Service sid sends incoming messages, and with which method.
func (f *Twilio) ServiceInbound(sid string) (url, method string) {
	f.nums.mu.Lock()
	defer f.nums.mu.Unlock()
	if s := f.nums.services[sid]; s != nil {
		return s.InboundURL, s.Method
	}
	return "", ""
}

// serveNumbers answers the numbers' and services' requests; false: r is not one of them.
func (f *Twilio) serveNumbers(w http.ResponseWriter, r *http.Request) bool {
	list, one, svc := twilioNumbersPath.FindStringSubmatch(r.URL.Path), twilioNumberPath.FindStringSubmatch(r.URL.Path), twilioServicePath.FindStringSubmatch(r.URL.Path)
	if list == nil && one == nil && svc == nil {
		return false
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != f.AccountSID || pass != f.AuthToken || list != nil && list[1] != f.AccountSID || one != nil && one[1] != f.AccountSID {
		twilioError(w, 401, 20003, "Authenticate")
		return true
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, 400, 20001, "bad form")
		return true
	}
	f.nums.mu.Lock()
	defer f.nums.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case list != nil && r.Method == http.MethodGet:
		found := []*twilioNumber{}
		if n := f.nums.numbers[r.Form.Get("PhoneNumber")]; n != nil {
			found = append(found, n)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"incoming_phone_numbers": found, "page": 0, "page_size": 50,
			"next_page_uri": nil, "uri": r.URL.RequestURI()})
	case one != nil && r.Method == http.MethodPost:
		var n *twilioNumber
		for _, x := range f.nums.numbers {
			if x.Sid == one[2] {
				n = x
			}
		}
		if n == nil {
			twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
			return true
		}
		if v := r.PostForm.Get("SmsUrl"); v != "" {
			n.SMSURL = v
		}
		if v := r.PostForm.Get("SmsMethod"); v != "" {
			n.SMSMethod = strings.ToUpper(v)
		}
		_ = json.NewEncoder(w).Encode(n)
	case svc != nil && r.Method == http.MethodPost:
		s := f.nums.services[svc[1]]
		if s == nil {
			twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
			return true
		}
		if v := r.PostForm.Get("InboundRequestUrl"); v != "" {
			s.InboundURL = v
		}
		if v := r.PostForm.Get("InboundMethod"); v != "" {
			s.Method = strings.ToUpper(v)
		}
		_ = json.NewEncoder(w).Encode(s)
	default:
		twilioError(w, 405, 20004, "Method not allowed")
	}
	return true
}
