// Package twilio sends SMS through a tenant's Twilio account with github.com/twilio/twilio-go
// (Messages API), from the tenant's own number or Messaging Service.
package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	twilioclient "github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name.
const Type = "twilio"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "Twilio", Channels: []message.Channel{message.SMS},
		New:         provider.Build(New),
		Callbacks:   func(provider.Env) (provider.Callbacks, error) { return callbacks{}, nil },
		PricedLater: true, Credentials: Credentials{}, Sender: Sender{},
	})
}

// Credentials are what a tenant gives: its Account SID and Auth Token.
type Credentials struct {
	AccountSID string `json:"account_sid" form:"Account SID;hint=AC followed by 32 hexadecimal characters"`
	AuthToken  string `json:"auth_token" form:"Auth token;secret"`
}

// Sender is where messages come from: a number (or alphanumeric sender ID) or a Messaging Service.
type Sender struct {
	From                string `json:"from" form:"From;optional;hint=an E.164 number such as +14155550100, or a sender ID"`
	MessagingServiceSID string `json:"messaging_service_sid" form:"Messaging Service SID;optional;hint=MG…, instead of From"`
	// Senders are the other numbers and sender IDs of the account a message's own from may name
	// (with a Messaging Service, senders in its pool).
	Senders []string `json:"senders,omitempty" form:"Other senders;optional;hint=numbers or sender IDs a message's own from may name, comma-separated"`
}

// AllowsFrom reports whether a message may name from as its sender: the config's from, or one
// of its other senders.
func (s Sender) AllowsFrom(from string) bool {
	return from == s.From || slices.Contains(s.Senders, from)
}

var (
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	authTokenRE  = regexp.MustCompile(`^[0-9a-zA-Z]{32}$`)
	serviceSIDRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	e164RE       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	senderIDRE   = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	hasLetterRE  = regexp.MustCompile(`[A-Za-z]`)
)

// validFrom accepts an E.164 number or an alphanumeric sender ID, which must hold a letter (or
// carriers read it as a short code).
func validFrom(s string) bool {
	return e164RE.MatchString(s) || senderIDRE.MatchString(s) && hasLetterRE.MatchString(s)
}

// Adapter is one Twilio config.
type Adapter struct {
	creds    Credentials
	sender   Sender
	callback string
	base     *url.URL // nil: api.twilio.com
	client   *http.Client
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	var a Adapter
	f.Decode("credentials", cfg.Credentials, &a.creds)
	f.Decode("sender", cfg.Sender, &a.sender)
	if cfg.Channel != message.SMS {
		f.Add("channel", "twilio sends sms only")
	}
	if f.Required("credentials.account_sid", a.creds.AccountSID) && !accountSIDRE.MatchString(a.creds.AccountSID) {
		f.Add("credentials.account_sid", "must be AC followed by 32 hexadecimal characters")
	}
	if f.Required("credentials.auth_token", a.creds.AuthToken) && !authTokenRE.MatchString(a.creds.AuthToken) {
		f.Add("credentials.auth_token", "must be 32 letters or digits")
	}
	switch s := a.sender; {
	case s.From == "" && s.MessagingServiceSID == "":
		f.Add("sender", "set from (an E.164 number or alphanumeric sender ID) or messaging_service_sid")
	case s.From != "" && s.MessagingServiceSID != "":
		f.Add("sender", "set either from or messaging_service_sid, not both")
	case s.From != "" && !validFrom(s.From):
		f.Add("sender.from", "must be an E.164 number such as +14155550100 or an alphanumeric sender ID of up to 11 characters")
	case s.MessagingServiceSID != "" && !serviceSIDRE.MatchString(s.MessagingServiceSID):
		f.Add("sender.messaging_service_sid", "must be MG followed by 32 hexadecimal characters")
	}
	if len(a.sender.Senders) > provider.MaxSenders {
		f.Add("sender.senders", "may list at most %d senders", provider.MaxSenders)
	}
	for i, v := range a.sender.Senders {
		if !validFrom(v) {
			f.Add(fmt.Sprintf("sender.senders[%d]", i), "must be an E.164 number such as +14155550100 or an alphanumeric sender ID of up to 11 characters")
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if env.TwilioBaseURL != "" {
		u, err := url.Parse(env.TwilioBaseURL)
		if err != nil || u.Host == "" {
			return nil, errors.New("COMMS_TWILIO_BASE_URL must be an absolute URL")
		}
		a.base = u
	}
	if env.PublicWebhookURL != "" {
		a.callback = env.PublicWebhookURL + "/webhooks/twilio/" + url.PathEscape(cfg.ID)
	}
	a.client = &http.Client{Transport: provider.Instrumented(provider.Transport), Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &a, nil
}

// Mask identifies the account without revealing it: AC12…89ab.
func (a *Adapter) Mask() string { return provider.Mask(a.creds.AccountSID) }

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return a.sender }

// Send creates one message.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	params := (&openapi.CreateMessageParams{}).SetTo(m.To).SetBody(m.Text)
	// A message's own from wins; with a Messaging Service it must be a sender in the service's
	// pool, which Twilio checks (21606 otherwise).
	if a.sender.MessagingServiceSID != "" {
		params.SetMessagingServiceSid(a.sender.MessagingServiceSID)
	}
	if from := m.SenderOr(a.sender.From); from != "" {
		params.SetFrom(from)
	}
	if a.callback != "" {
		params.SetStatusCallback(a.callback)
	}
	msg, err := a.api(ctx).CreateMessage(params)
	if err != nil {
		return provider.Result{}, classify(ctx, err)
	}
	var r provider.Result
	if msg.Sid != nil {
		r.ProviderMessageID = *msg.Sid
	}
	if msg.Price != nil {
		r.Cost = *msg.Price
	}
	if msg.PriceUnit != nil {
		r.Currency = *msg.PriceUnit
	}
	if r.ProviderMessageID == "" {
		return provider.Result{}, provider.Failure(Type, provider.Unknown, "", "response carried no message sid")
	}
	return r, nil
}

// api is a Messages API client for one call. twilio-go takes no context, so each call gets a
// client whose transport carries this one: cancellation and the attempt deadline reach the HTTP
// request. The client is a few words.
func (a *Adapter) api(ctx context.Context) *openapi.ApiService {
	return openapi.NewApiServiceWithClient(a.twilioClient(ctx))
}

// twilioClient is a client of any Twilio API host for one call under ctx.
func (a *Adapter) twilioClient(ctx context.Context) *twilioclient.Client {
	c := &twilioclient.Client{
		Credentials: twilioclient.NewCredentials(a.creds.AccountSID, a.creds.AuthToken),
		HTTPClient: &http.Client{Transport: &transport{ctx: ctx, base: a.base, next: a.client.Transport},
			Timeout: a.client.Timeout, CheckRedirect: a.client.CheckRedirect},
	}
	c.SetAccountSid(a.creds.AccountSID)
	return c
}

// Price fetches what Twilio charged for a message it sent: Twilio prices a message after sending
// it, so the send's answer usually has none. Empty cost: not priced yet.
func (a *Adapter) Price(ctx context.Context, providerMessageID string) (cost, currency string, err error) {
	msg, err := a.api(ctx).FetchMessage(providerMessageID, &openapi.FetchMessageParams{})
	if err != nil {
		return "", "", classify(ctx, err)
	}
	if msg.Price != nil {
		cost = *msg.Price
	}
	if msg.PriceUnit != nil {
		currency = *msg.PriceUnit
	}
	return cost, currency, nil
}

// transport points requests at the configured base URL and ties them to the send's context.
type transport struct {
	ctx  context.Context
	base *url.URL
	next http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.WithContext(t.ctx)
	if t.base != nil {
		r.URL.Scheme, r.URL.Host = t.base.Scheme, t.base.Host
		r.Host = t.base.Host
	}
	return t.next.RoundTrip(r)
}

// codes maps Twilio's API error codes (https://www.twilio.com/docs/api/errors) to ours.
var codes = map[int]provider.Code{
	20003: provider.AuthFailed,        // Authenticate
	20404: provider.AuthFailed,        // the account in the URL is not the credentials' account
	20005: provider.InsufficientFunds, // account not active: out of funds or trial not activated
	10001: provider.InsufficientFunds, // account is not active (balance at or below zero)
	30002: provider.InsufficientFunds, // account suspended
	20429: provider.RateLimited,
	14107: provider.RateLimited,
	21211: provider.InvalidRecipient, // invalid 'To' phone number
	21217: provider.InvalidRecipient,
	21265: provider.InvalidRecipient,
	21401: provider.InvalidRecipient,
	21408: provider.InvalidRecipient, // permission to send to this region is not enabled
	21610: provider.InvalidRecipient, // the recipient replied STOP
	21612: provider.InvalidRecipient,
	21614: provider.InvalidRecipient, // not a mobile number
	21212: provider.InvalidSender,
	21603: provider.InvalidSender,
	21606: provider.InvalidSender, // 'From' is not a valid SMS-capable number of this account
	21659: provider.InvalidSender,
	21660: provider.InvalidSender,
	21701: provider.InvalidSender,
	21703: provider.InvalidSender,
	21704: provider.InvalidSender,
	21705: provider.InvalidSender,
	21602: provider.ContentRejected, // body required
	21617: provider.ContentRejected, // body too long
	21618: provider.ContentRejected,
	30007: provider.ContentRejected, // filtered as spam
	// Delivery errors, reported in status callbacks.
	30001: provider.RateLimited,      // queue overflow
	30003: provider.InvalidRecipient, // unreachable destination handset
	30004: provider.InvalidRecipient, // message blocked by the recipient or carrier
	30005: provider.InvalidRecipient, // unknown destination handset
	30006: provider.InvalidRecipient, // landline or unreachable carrier
	30008: provider.Unknown,
	30032: provider.InvalidSender, // toll-free number not verified
	30034: provider.InvalidSender, // US A2P 10DLC: number not registered
}

// explanations are Twilio's short descriptions of the delivery error codes a status callback
// carries (its ErrorCode has no text of its own).
var explanations = map[string]string{
	"30001": "Queue overflow", "30002": "Account suspended", "30003": "Unreachable destination handset",
	"30004": "Message blocked", "30005": "Unknown destination handset", "30006": "Landline or unreachable carrier",
	"30007": "Message filtered (carrier violation)", "30008": "Unknown error", "30032": "Toll-free number has not been verified",
	"30034": "Message from an unregistered number", "21610": "Attempt to send to unsubscribed recipient",
	"21408": "Permission to send an SMS has not been enabled for the region", "21614": "'To' number is not a valid mobile number",
}

// CodeFor normalizes a Twilio error code ("30003"); unknown codes are provider.Unknown.
func CodeFor(raw string) provider.Code {
	n, err := strconv.Atoi(raw)
	if err != nil {
		return provider.Unknown
	}
	if c, ok := codes[n]; ok {
		return c
	}
	return provider.Unknown
}

// Explain is Twilio's description of an error code, or "Twilio error <code>".
func Explain(raw string) string {
	if e, ok := explanations[raw]; ok {
		return e
	}
	return "Twilio error " + raw
}

func classify(ctx context.Context, err error) error {
	var te *twilioclient.TwilioRestError
	if errors.As(err, &te) {
		raw := strconv.Itoa(te.Code)
		code, ok := codes[te.Code]
		switch {
		case ok:
		case te.Status == http.StatusTooManyRequests:
			code = provider.RateLimited
		case te.Status == http.StatusUnauthorized || te.Status == http.StatusForbidden:
			code = provider.AuthFailed
		case te.Status >= 500:
			code = provider.ProviderUnavailable
		default:
			// An unrecognised 4xx will not succeed on retry.
			e := provider.Failure(Type, provider.Unknown, raw, te.Message)
			e.Permanent = true
			return e
		}
		e := provider.Failure(Type, code, raw, te.Message)
		if te.Code == 21610 {
			e.Suppress = "complaint" // the recipient replied STOP: as its callback does
		}
		return e
	}
	// A 5xx body twilio-go could not decode, or a connection failure.
	return provider.Unreachable(ctx, Type, err)
}

// AuthToken is a stored config's auth token, which signs its status callbacks.
func AuthToken(credentials []byte) string {
	var c Credentials
	_ = json.Unmarshal(credentials, &c)
	return c.AuthToken
}

// AccountSID is a stored config's account, which an incoming message names.
func AccountSID(credentials []byte) string {
	var c Credentials
	_ = json.Unmarshal(credentials, &c)
	return c.AccountSID
}
