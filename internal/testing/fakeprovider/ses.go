package fakeprovider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/logicspike/comms/pkg/provider"
)

// SES is a fake of the SES v2 SendEmail operation (POST /v2/email/outbound-emails, restJson1)
// that verifies each request's AWS Signature Version 4 with the secret it knows, and answers
// errors the way SES does: the type in X-Amzn-ErrorType and {"message": ...} in the body.
// It also plays STS (POST / Action=AssumeRole, the query protocol with XML answers): the key may
// assume RoleARN, and SES then accepts the role's temporary credentials with their session token.
type SES struct {
	recorder
	*httptest.Server
	Region, AccessKeyID, SecretAccessKey string
	RoleARN, ExternalID                  string
	AssumeRoleCalls                      atomic.Int64
	n                                    atomic.Int64
}

// The role's temporary credentials.
//
//nolint:gosec // the fake's own made-up credentials
const (
	tempKeyID  = "ASIAFAKETEMPKEY00001"
	tempSecret = "temp/secret/0123456789abcdefghijklmnop"
	tempToken  = "FwoGZXIvYXdzEFAKESESSIONTOKEN"
)

var sesErrors = map[provider.Code]struct {
	status int
	typ    string
	msg    string
}{
	provider.AuthFailed:          {403, "UnrecognizedClientException", "The security token included in the request is invalid."},
	provider.InsufficientFunds:   {400, "AccountSuspendedException", "The account's ability to send email has been permanently restricted."},
	provider.InvalidRecipient:    {400, "BadRequestException", "Illegal address"},
	provider.InvalidSender:       {400, "MailFromDomainNotVerifiedException", "The MAIL FROM domain is not verified."},
	provider.RateLimited:         {429, "TooManyRequestsException", "Maximum sending rate exceeded."},
	provider.ProviderUnavailable: {500, "InternalFailure", "The request processing has failed because of an unknown error."},
	provider.ContentRejected:     {400, "MessageRejected", "Message rejected: content flagged"},
}

// NewSES starts a fake for one IAM key in us-east-1.
func NewSES() *SES {
	f := &SES{Region: "us-east-1", AccessKeyID: "AKIAFAKEFAKEFAKE1234", SecretAccessKey: "fake/secret/key/0123456789abcdefghijkl", //nolint:gosec // the fake's own key
		RoleARN: "arn:aws:iam::123456789012:role/comms-sender", ExternalID: "tenant-ext-id"}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func sesError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

var credRE = regexp.MustCompile(`Credential=([^/]+)/(\d{8})/([^/]+)/([a-z]+)/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)`)

// verify recomputes the SigV4 signature over the headers the client signed, for service.
// allowTemp accepts the role's temporary credentials (with their session token).
func (f *SES) verify(r *http.Request, body []byte, service string, allowTemp bool) (string, string) {
	m := credRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[4] != service {
		return "IncompleteSignature", "Authorization header is not AWS4-HMAC-SHA256 for " + service
	}
	creds := aws.Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey}
	switch {
	case m[1] == f.AccessKeyID:
	case allowTemp && m[1] == tempKeyID && r.Header.Get("X-Amz-Security-Token") == tempToken:
		creds = aws.Credentials{AccessKeyID: tempKeyID, SecretAccessKey: tempSecret, SessionToken: tempToken}
	default:
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if m[3] != f.Region {
		return "SignatureDoesNotMatch", "Credential should be scoped to a valid region."
	}
	ts, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "IncompleteSignature", "X-Amz-Date is missing or malformed"
	}
	// Never sent: rebuilt only to be signed again and compared.
	clone, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body)) //nolint:gosec // not sent
	for _, h := range strings.Split(m[5], ";") {
		if h != "host" {
			clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, hex.EncodeToString(sum[:]), service, f.Region, ts); err != nil {
		return "InternalFailure", err.Error()
	}
	if got := credRE.FindStringSubmatch(clone.Header.Get("Authorization")); got == nil || got[6] != m[6] {
		return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided."
	}
	return "", ""
}

type sesContent struct {
	Data string `json:"Data"`
}

type sesRequest struct {
	FromEmailAddress string `json:"FromEmailAddress"`
	Destination      struct {
		ToAddresses []string `json:"ToAddresses"`
	} `json:"Destination"`
	Content struct {
		Simple *struct {
			Subject sesContent `json:"Subject"`
			Body    struct {
				Text *sesContent `json:"Text"`
				HTML *sesContent `json:"Html"`
			} `json:"Body"`
		} `json:"Simple"`
	} `json:"Content"`
	ConfigurationSetName string `json:"ConfigurationSetName"`
	EmailTags            []struct {
		Name, Value string
	} `json:"EmailTags"`
}

func (f *SES) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		f.assumeRole(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v2/email/outbound-emails" {
		sesError(w, 404, "NotFoundException", "unknown operation "+r.Method+" "+r.URL.Path)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if typ, msg := f.verify(r, body, "ses", true); typ != "" {
		sesError(w, 403, typ, msg)
		return
	}
	var req sesRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Content.Simple == nil {
		sesError(w, 400, "BadRequestException", "malformed SendEmail request")
		return
	}
	if len(req.Destination.ToAddresses) != 1 {
		sesError(w, 400, "BadRequestException", "fake expects one recipient")
		return
	}
	to := req.Destination.ToAddresses[0]
	if code, ok := f.failure(to); ok {
		e := sesErrors[code]
		sesError(w, e.status, e.typ, e.msg)
		return
	}
	rec := Received{To: to, From: req.FromEmailAddress, Subject: req.Content.Simple.Subject.Data,
		Extra: map[string]string{"ConfigurationSetName": req.ConfigurationSetName}, Raw: string(body)}
	if t := req.Content.Simple.Body.Text; t != nil {
		rec.Text = t.Data
	}
	if h := req.Content.Simple.Body.HTML; h != nil {
		rec.HTML = h.Data
	}
	for _, t := range req.EmailTags {
		if t.Name == "comms_message_id" {
			rec.MessageID = t.Value
		}
	}
	rec.ProviderMessageID = fmt.Sprintf("0100018c%08x-fake-ses-%06d", time.Now().Unix(), f.n.Add(1))
	f.record(rec)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": rec.ProviderMessageID})
}

func stsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(msg))
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake-request</RequestId></ErrorResponse>`, code, esc.String()) //nolint:gosec // escaped; test fake
}

func (f *SES) assumeRole(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if typ, msg := f.verify(r, body, "sts", false); typ != "" {
		stsError(w, 403, "InvalidClientTokenId", typ+": "+msg)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "AssumeRole" {
		stsError(w, 400, "InvalidAction", "unsupported action")
		return
	}
	if form.Get("RoleArn") != f.RoleARN || form.Get("ExternalId") != f.ExternalID {
		stsError(w, 403, "AccessDenied", "User: arn:aws:iam::111111111111:user/comms is not authorized to perform: sts:AssumeRole on resource: "+form.Get("RoleArn"))
		return
	}
	f.AssumeRoleCalls.Add(1)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/comms-sender/%s</Arn><AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>fake-request</RequestId></ResponseMetadata></AssumeRoleResponse>`,
		tempKeyID, tempSecret, tempToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), form.Get("RoleSessionName"), form.Get("RoleSessionName"))
}
