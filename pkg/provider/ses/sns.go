package ses

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA; we verify what AWS signs
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/logicspike/comms/pkg/provider"
)

// DefaultSNSHost matches the hosts SNS signs from and sends subscription links on:
// sns.<region>.amazonaws.com (and .com.cn in China).
const DefaultSNSHost = `^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`

// SNSMessage is the JSON body SNS posts to an HTTPS subscription.
type SNSMessage struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token,omitempty"`
	TopicArn         string `json:"TopicArn"`
	Subject          string `json:"Subject,omitempty"`
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	SubscribeURL     string `json:"SubscribeURL,omitempty"`
	UnsubscribeURL   string `json:"UnsubscribeURL,omitempty"`
}

// ParseSNS decodes an SNS body and checks that the fields its signature covers are present.
func ParseSNS(body []byte) (SNSMessage, error) {
	var m SNSMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return SNSMessage{}, provider.Malformed("not an SNS message: %v", err)
	}
	switch m.Type {
	case "Notification":
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		if m.SubscribeURL == "" || m.Token == "" {
			return SNSMessage{}, provider.Malformed("%s without SubscribeURL or Token", m.Type)
		}
	default:
		return SNSMessage{}, provider.Malformed("SNS Type %q is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation", provider.Truncate(m.Type, 40))
	}
	if m.MessageID == "" || m.TopicArn == "" || m.Timestamp == "" || m.Signature == "" || m.SigningCertURL == "" {
		return SNSMessage{}, provider.Malformed("MessageId, TopicArn, Timestamp, Signature and SigningCertURL are required")
	}
	if len(m.MessageID) > 128 {
		return SNSMessage{}, provider.Malformed("MessageId is too long")
	}
	return m, nil
}

// StringToSign is the canonical text SNS signs: "Name\nvalue\n" for each signed field in byte
// order of names, Subject only when present.
func (m SNSMessage) StringToSign() string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != "" {
			add("Subject", m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// SNSVerifier checks SNS signatures with the certificate at SigningCertURL, fetched only over
// HTTPS from a host that matches the SNS host pattern, and cached; it confirms subscriptions
// only through links on that host pattern, so a forged message cannot make us fetch any other URL.
type SNSVerifier struct {
	host   *regexp.Regexp
	port   string
	client *http.Client
	ttl    time.Duration

	mu    sync.Mutex
	certs map[string]cachedCert
}

type cachedCert struct {
	key     *rsa.PublicKey
	fetched time.Time
}

// NewSNSVerifier returns a verifier for hosts matching hostPattern ("" is DefaultSNSHost) that
// fetches with client (its transport decides which CAs are trusted; nil: a default client).
func NewSNSVerifier(hostPattern string, client *http.Client) (*SNSVerifier, error) {
	if hostPattern == "" {
		hostPattern = DefaultSNSHost
	}
	re, err := regexp.Compile(hostPattern)
	if err != nil {
		return nil, fmt.Errorf("SNS host pattern: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// never follow a redirect off the checked host
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &SNSVerifier{host: re, port: "443", client: &c, ttl: time.Hour, certs: map[string]cachedCert{}}, nil
}

// WithPort makes the verifier accept URLs on port instead of 443: for a local fake of SNS only.
func (v *SNSVerifier) WithPort(port string) *SNSVerifier {
	v.port = port
	return v
}

// checkURL accepts only https URLs on a host matching the pattern, on SNS's port (443).
func (v *SNSVerifier) checkURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || !v.host.MatchString(u.Hostname()) ||
		(u.Port() != "" && u.Port() != v.port) || (u.Port() == "" && v.port != "443") {
		return nil, provider.Unverified("%s %q is not an https URL on an SNS host and port", what, provider.Truncate(raw, 120))
	}
	return u, nil
}

// Verify checks m's signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA).
func (v *SNSVerifier) Verify(ctx context.Context, m SNSMessage) error {
	if _, err := v.checkURL(m.SigningCertURL, "SigningCertURL"); err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return provider.Unverified("Signature is not base64")
	}
	var (
		hash   crypto.Hash
		digest []byte
	)
	switch m.SignatureVersion {
	case "1":
		h := sha1.Sum([]byte(m.StringToSign())) //nolint:gosec // see import
		hash, digest = crypto.SHA1, h[:]
	case "2":
		h := sha256.Sum256([]byte(m.StringToSign()))
		hash, digest = crypto.SHA256, h[:]
	default:
		return provider.Unverified("SignatureVersion %q is not 1 or 2", provider.Truncate(m.SignatureVersion, 10))
	}
	key, err := v.cert(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return provider.Unverified("SNS signature does not match")
	}
	return nil
}

func (v *SNSVerifier) cert(ctx context.Context, certURL string) (*rsa.PublicKey, error) {
	v.mu.Lock()
	c, ok := v.certs[certURL]
	v.mu.Unlock()
	if ok && time.Since(c.fetched) < v.ttl {
		return c.key, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, certURL, nil)
	if err != nil {
		return nil, provider.Unverified("SigningCertURL: %v", err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		// Not the sender's fault, perhaps: the caller answers 401 and SNS retries.
		return nil, provider.Unverified("fetch signing certificate: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, provider.Unverified("fetch signing certificate: HTTP %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, provider.Unverified("fetch signing certificate: %v", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, provider.Unverified("signing certificate is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, provider.Unverified("signing certificate: %v", err)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, provider.Unverified("signing certificate is not valid now")
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, provider.Unverified("signing certificate has no RSA key")
	}
	v.mu.Lock()
	if len(v.certs) > 64 { // SNS uses a handful per region; bound what a stream of URLs can grow
		clear(v.certs)
	}
	v.certs[certURL] = cachedCert{key: key, fetched: time.Now()}
	v.mu.Unlock()
	return key, nil
}

// Confirm visits a verified SubscriptionConfirmation's SubscribeURL, which must be on an SNS host.
func (v *SNSVerifier) Confirm(ctx context.Context, m SNSMessage) error {
	if _, err := v.checkURL(m.SubscribeURL, "SubscribeURL"); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.SubscribeURL, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("confirm SNS subscription: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("confirm SNS subscription: HTTP %d", resp.StatusCode)
	}
	return nil
}
