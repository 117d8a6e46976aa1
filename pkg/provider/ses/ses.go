// Package ses sends email through a tenant's AWS SES account with the SES v2 SendEmail API
// (github.com/aws/aws-sdk-go-v2/service/sesv2).
package ses

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Type is the provider type name.
const Type = "ses"

func init() {
	provider.Register(provider.Registration{
		Type: Type, Name: "AWS SES", Channels: []message.Channel{message.Email},
		New:       provider.Build(New),
		Callbacks: newCallbacks, Credentials: Credentials{}, Sender: Sender{},
	})
}

// Credentials are an IAM access key allowed ses:SendEmail in region or, with RoleARN, allowed to
// assume a role that is (cross-account: the tenant's role trusts the platform's key, and
// ExternalID guards against the confused deputy).
type Credentials struct {
	Region          string `json:"region" form:"Region;hint=us-east-1"`
	AccessKeyID     string `json:"access_key_id" form:"Access key ID;hint=AKIA…"`
	SecretAccessKey string `json:"secret_access_key" form:"Secret access key;secret"`
	RoleARN         string `json:"role_arn" form:"Role ARN;optional;hint=a role in your account to assume"`
	ExternalID      string `json:"external_id" form:"External ID;optional"`
}

// Sender is the verified From identity and, optionally, the configuration set whose event
// destination publishes delivery events, and the SNS topic it publishes them to: when set, the
// webhook receiver accepts SNS messages from that topic only.
type Sender struct {
	From             string   `json:"from" form:"From;hint=Acme <noreply@acme.example>"`
	ConfigurationSet string   `json:"configuration_set" form:"Configuration set;optional;hint=publishes delivery events"`
	SNSTopicARN      string   `json:"sns_topic_arn" form:"SNS topic ARN;optional"`
	Domains          []string `json:"domains,omitempty" form:"Verified domains;optional;hint=other domains a message's own from may use, comma-separated"`
}

// AllowsFrom reports whether a message may name from as its sender: an address on the domain of
// the config's from or on one of its verified domains.
func (s Sender) AllowsFrom(from string) bool {
	return provider.EmailFromAllowed(from, s.From, s.Domains)
}

// SNSTopic is the topic a stored config's events must come from ("" accepts any topic).
func SNSTopic(sender []byte) string {
	var s Sender
	_ = json.Unmarshal(sender, &s)
	return s.SNSTopicARN
}

var (
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]$`)
	accessKeyRE = regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{12,124}$`)
	configSetRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	topicARNRE  = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$`)
	roleARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

// Adapter is one SES config.
type Adapter struct {
	creds  Credentials
	sender Sender
	client *sesv2.Client
}

// New validates cfg and returns its adapter; validation errors are a *message.ValidationError.
func New(cfg provider.Config, env provider.Env) (*Adapter, error) {
	var f provider.Fields
	var a Adapter
	f.Decode("credentials", cfg.Credentials, &a.creds)
	f.Decode("sender", cfg.Sender, &a.sender)
	if cfg.Channel != message.Email {
		f.Add("channel", "ses sends email only")
	}
	if f.Required("credentials.region", a.creds.Region) && !regionRE.MatchString(a.creds.Region) {
		f.Add("credentials.region", "must be an AWS region such as us-east-1")
	}
	if f.Required("credentials.access_key_id", a.creds.AccessKeyID) && !accessKeyRE.MatchString(a.creds.AccessKeyID) {
		f.Add("credentials.access_key_id", "must be an AWS access key id (AKIA…)")
	}
	if f.Required("credentials.secret_access_key", a.creds.SecretAccessKey) && len(a.creds.SecretAccessKey) < 16 {
		f.Add("credentials.secret_access_key", "is too short to be an AWS secret access key")
	}
	f.Domains("sender.domains", a.sender.Domains)
	if f.Required("sender.from", a.sender.From) {
		if _, err := mail.ParseAddress(a.sender.From); err != nil {
			f.Add("sender.from", "must be an email address such as \"Acme <noreply@acme.example>\"")
		}
	}
	if a.creds.RoleARN != "" && !roleARNRE.MatchString(a.creds.RoleARN) {
		f.Add("credentials.role_arn", "must be an IAM role ARN such as arn:aws:iam::123456789012:role/comms-sender")
	}
	if a.creds.ExternalID != "" && (a.creds.RoleARN == "" || len(a.creds.ExternalID) < 2 || len(a.creds.ExternalID) > 1224) {
		f.Add("credentials.external_id", "needs role_arn, and 2 to 1224 characters")
	}
	if a.sender.ConfigurationSet != "" && !configSetRE.MatchString(a.sender.ConfigurationSet) {
		f.Add("sender.configuration_set", "must be 1 to 64 letters, digits, _ or -")
	}
	if a.sender.SNSTopicARN != "" && !topicARNRE.MatchString(a.sender.SNSTopicARN) {
		f.Add("sender.sns_topic_arn", "must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:ses-events")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	awsCfg := aws.Config{
		Region:      a.creds.Region,
		Credentials: credentials.NewStaticCredentialsProvider(a.creds.AccessKeyID, a.creds.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: provider.Instrumented(provider.Transport), Timeout: time.Minute},
		// Retrying belongs to the worker, which records every attempt; the SDK's own retries
		// would hide attempts and stretch one past its deadline.
		Retryer: func() aws.Retryer { return aws.NopRetryer{} },
	}
	if a.creds.RoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if env.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(env.STSEndpoint)
			}
		})
		// The cache refreshes the role's temporary credentials shortly before they expire.
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, a.creds.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "comms-" + cfg.ID
			if a.creds.ExternalID != "" {
				o.ExternalID = aws.String(a.creds.ExternalID)
			}
		}))
	}
	a.client = sesv2.NewFromConfig(awsCfg, func(o *sesv2.Options) {
		if env.SESEndpoint != "" {
			o.BaseEndpoint = aws.String(env.SESEndpoint)
		}
	})
	return &a, nil
}

// Mask identifies the access key: AKIA…WXYZ.
func (a *Adapter) Mask() string { return provider.Mask(a.creds.AccessKeyID) }

// Public is the non-secret part of the config, shown to the tenant.
func (a *Adapter) Public() any { return a.sender }

// Send calls SendEmail once.
func (a *Adapter) Send(ctx context.Context, m provider.Message) (provider.Result, error) {
	body := &types.Body{}
	if m.Text != "" {
		body.Text = &types.Content{Data: aws.String(m.Text), Charset: aws.String("UTF-8")}
	}
	if m.HTML != "" {
		body.Html = &types.Content{Data: aws.String(m.HTML), Charset: aws.String("UTF-8")}
	}
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(m.SenderOr(a.sender.From)),
		Destination:      &types.Destination{ToAddresses: []string{m.To}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String(m.Subject), Charset: aws.String("UTF-8")},
			Body:    body,
		}},
	}
	for _, h := range m.SortedHeaders() {
		in.Content.Simple.Headers = append(in.Content.Simple.Headers, types.MessageHeader{Name: aws.String(h[0]), Value: aws.String(h[1])})
	}
	if m.ID != "" {
		// Tags travel with SES events, so a callback can be matched even without the message id.
		in.EmailTags = []types.MessageTag{{Name: aws.String("comms_message_id"), Value: aws.String(m.ID)}}
	}
	if a.sender.ConfigurationSet != "" {
		in.ConfigurationSetName = aws.String(a.sender.ConfigurationSet)
	}
	out, err := a.client.SendEmail(ctx, in)
	if err != nil {
		return provider.Result{}, classify(ctx, err)
	}
	if out.MessageId == nil || *out.MessageId == "" {
		return provider.Result{}, provider.Failure(Type, provider.Unknown, "", "response carried no MessageId")
	}
	return provider.Result{ProviderMessageID: *out.MessageId}, nil
}

// codes maps SES v2 error types (x-amzn-ErrorType) to ours.
var codes = map[string]provider.Code{
	"UnrecognizedClientException":        provider.AuthFailed,
	"InvalidClientTokenId":               provider.AuthFailed,
	"SignatureDoesNotMatch":              provider.AuthFailed,
	"InvalidSignatureException":          provider.AuthFailed,
	"IncompleteSignature":                provider.AuthFailed,
	"AccessDeniedException":              provider.AuthFailed,
	"AccessDenied":                       provider.AuthFailed, // STS: the role does not trust this key
	"RegionDisabledException":            provider.AuthFailed,
	"ExpiredTokenException":              provider.AuthFailed,
	"AccountSuspendedException":          provider.InsufficientFunds,
	"SendingPausedException":             provider.InsufficientFunds,
	"MailFromDomainNotVerifiedException": provider.InvalidSender,
	"NotFoundException":                  provider.InvalidSender, // configuration set or identity
	"MessageRejected":                    provider.ContentRejected,
	"TooManyRequestsException":           provider.RateLimited,
	"LimitExceededException":             provider.RateLimited,
	"ThrottlingException":                provider.RateLimited,
	"InternalFailure":                    provider.ProviderUnavailable,
	"ServiceUnavailable":                 provider.ProviderUnavailable,
}

func classify(ctx context.Context, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		raw, msg := ae.ErrorCode(), ae.ErrorMessage()
		code, ok := codes[raw]
		lower := strings.ToLower(msg)
		switch {
		case raw == "MessageRejected" && strings.Contains(lower, "not verified"):
			// In the SES sandbox an unverified identity is rejected this way; the sender's is the
			// usual one, and it is the tenant's to fix either way.
			code = provider.InvalidSender
		case raw == "BadRequestException" && (strings.Contains(lower, "address") || strings.Contains(lower, "recipient")):
			code = provider.InvalidRecipient
		case ok:
		default:
			var re *smithyhttp.ResponseError
			if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
				code = provider.ProviderUnavailable
			} else {
				e := provider.Failure(Type, provider.Unknown, raw, msg)
				e.Permanent = true
				return e
			}
		}
		return provider.Failure(Type, code, raw, msg)
	}
	return provider.Unreachable(ctx, Type, err)
}
