package fakeprovider

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Twilio signs with HMAC-SHA1 and SNS v1 with SHA1withRSA
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// This file is the providers' side of delivery callbacks, written from their documentation and
// independently of the receiver's verifiers: Twilio's request signing, SNS message signing, and
// Svix (Resend) webhook signing.

// TwilioSignature signs a Twilio webhook: base64 HMAC-SHA1, under the auth token, of the URL
// followed by every POST parameter's name and value in name order.
func TwilioSignature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range params[k] {
			b.WriteString(k + v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// PostTwilioCallback sends a status callback as Twilio does: a form POST to url, signed.
func PostTwilioCallback(c *http.Client, fullURL, authToken string, params url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, fullURL, strings.NewReader(params.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", TwilioSignature(authToken, fullURL, params))
	req.Header.Set("I-Twilio-Idempotency-Token", strconv.FormatInt(time.Now().UnixNano(), 36))
	return c.Do(req)
}

// TwilioStatus is the form of a status callback for sid.
func TwilioStatus(accountSID, sid, to, status, errorCode string) url.Values {
	v := url.Values{"AccountSid": {accountSID}, "MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status},
		"SmsStatus": {status}, "To": {to}, "From": {"+14155550100"}, "ApiVersion": {"2010-04-01"}}
	if errorCode != "" {
		v.Set("ErrorCode", errorCode)
	}
	return v
}

// SvixSignature signs a Svix (Resend) delivery: "v1," + base64 HMAC-SHA256 of
// "id.timestamp.body" under the secret's base64 after "whsec_".
func SvixSignature(secret, id string, ts int64, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

var svixN atomic.Int64

// PostResendEvent sends a Resend webhook event as Svix does, signed at time ts.
func PostResendEvent(c *http.Client, endpoint, secret string, ts time.Time, body []byte) (*http.Response, error) {
	id := fmt.Sprintf("msg_fake%020d", svixN.Add(1))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("svix-signature", SvixSignature(secret, id, ts.Unix(), body))
	return c.Do(req)
}

// ResendEvent is the body of a Resend webhook of type (email.delivered, email.bounced...).
func ResendEvent(typ, emailID, to string, at time.Time) []byte {
	data := map[string]any{"email_id": emailID, "created_at": at.UTC().Format(time.RFC3339Nano), "from": "Acme <noreply@acme.example>",
		"to": []string{to}, "subject": "hello"}
	switch typ {
	case "email.bounced":
		data["bounce"] = map[string]string{"message": "The recipient's email address does not exist.", "subType": "General", "type": "Permanent"}
	case "email.clicked":
		data["click"] = map[string]string{"link": "https://acme.example/welcome", "ipAddress": "192.0.2.1", "timestamp": at.UTC().Format(time.RFC3339)}
	}
	b, _ := json.Marshal(map[string]any{"type": typ, "created_at": at.UTC().Format(time.RFC3339Nano), "data": data})
	return b
}

// SNS plays Amazon SNS for an HTTPS subscription: it serves its signing certificate and the
// SubscribeURL over TLS on 127.0.0.1, and signs messages with its key.
type SNS struct {
	*httptest.Server
	key       *rsa.PrivateKey
	certPEM   []byte
	Confirmed atomic.Int64
	n         atomic.Int64
}

// NewSNS starts the fake.
func NewSNS() *SNS {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.us-east-1.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	f := &SNS{key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/SimpleNotificationService-fake.pem":
			_, _ = w.Write(f.certPEM)
		case r.URL.Query().Get("Action") == "ConfirmSubscription":
			f.Confirmed.Add(1)
			_, _ = w.Write([]byte(`<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:us-east-1:123456789012:ses-events:1</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>`))
		default:
			http.NotFound(w, r)
		}
	}))
	return f
}

// HostPattern matches this fake's host, for callback.NewSNSVerifier.
const HostPattern = `^127\.0\.0\.1$`

// Port is the fake's port, for SNSVerifier.WithPort.
func (f *SNS) Port() string { u, _ := url.Parse(f.URL); return u.Port() }

// CertURL is where the signing certificate is served.
func (f *SNS) CertURL() string { return f.URL + "/SimpleNotificationService-fake.pem" }

// Message builds a signed SNS message of typ ("Notification" or "SubscriptionConfirmation")
// carrying msg from topic, with SignatureVersion version ("1" or "2").
func (f *SNS) Message(typ, topic, msg, version string) []byte {
	m := map[string]string{
		"Type": typ, "MessageId": fmt.Sprintf("5d6f0a2c-fake-4c3e-9a3b-%012d", f.n.Add(1)), "TopicArn": topic, "Message": msg,
		"Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "SignatureVersion": version, "SigningCertURL": f.CertURL(),
	}
	fields := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if typ == "SubscriptionConfirmation" {
		m["Token"] = "2336412f37fb687f5d51e6e2425f004aed5e5f3e2d5e"
		m["SubscribeURL"] = f.URL + "/?Action=ConfirmSubscription&TopicArn=" + url.QueryEscape(topic) + "&Token=" + m["Token"]
		fields = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	} else {
		m["UnsubscribeURL"] = f.URL + "/?Action=Unsubscribe"
	}
	var s strings.Builder
	for _, k := range fields {
		if v, ok := m[k]; ok {
			s.WriteString(k + "\n" + v + "\n")
		}
	}
	var sig []byte
	var err error
	if version == "1" {
		h := sha1.Sum([]byte(s.String())) //nolint:gosec // SNS v1
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA1, h[:])
	} else {
		h := sha256.Sum256([]byte(s.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, f.key, crypto.SHA256, h[:])
	}
	if err != nil {
		panic(err)
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(m)
	return b
}

// SESEvent is an SES event-publishing record of eventType for messageID sent to recipient.
func SESEvent(eventType, messageID, recipient string, at time.Time) string {
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	e := map[string]any{
		"eventType": eventType,
		"mail": map[string]any{"timestamp": ts, "messageId": messageID, "source": "noreply@acme.example",
			"destination": []string{recipient}, "tags": map[string][]string{"ses:configuration-set": {"comms"}}},
	}
	switch eventType {
	case "Delivery":
		e["delivery"] = map[string]any{"timestamp": ts, "recipients": []string{recipient}, "smtpResponse": "250 2.6.0 Message received", "processingTimeMillis": 512}
	case "Bounce":
		e["bounce"] = map[string]any{"bounceType": "Permanent", "bounceSubType": "General", "timestamp": ts, "feedbackId": "fb-1",
			"bouncedRecipients": []map[string]string{{"emailAddress": recipient, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}}}
	case "Complaint":
		e["complaint"] = map[string]any{"timestamp": ts, "feedbackId": "fb-2", "complaintFeedbackType": "abuse",
			"complainedRecipients": []map[string]string{{"emailAddress": recipient}}}
	case "Open":
		e["open"] = map[string]any{"timestamp": ts, "ipAddress": "192.0.2.1", "userAgent": "Mozilla/5.0"}
	case "Click":
		e["click"] = map[string]any{"timestamp": ts, "ipAddress": "192.0.2.1", "link": "https://acme.example/welcome", "userAgent": "Mozilla/5.0"}
	case "DeliveryDelay":
		e["deliveryDelay"] = map[string]any{"timestamp": ts, "delayType": "MailboxFull", "expirationTime": ts}
	case "Reject":
		e["reject"] = map[string]any{"reason": "Bad content"}
	}
	b, _ := json.Marshal(e)
	return string(b)
}
