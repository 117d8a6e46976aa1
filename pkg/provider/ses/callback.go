package ses

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// sesEvent is an SES event (configuration-set event publishing: eventType) or notification
// (identity notifications: notificationType), as SNS carries it in Message.
type sesEvent struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Timestamp   time.Time `json:"timestamp"`
		MessageID   string    `json:"messageId"`
		Destination []string  `json:"destination"`
	} `json:"mail"`
	Delivery *struct {
		Timestamp    time.Time `json:"timestamp"`
		SMTPResponse string    `json:"smtpResponse"`
	} `json:"delivery"`
	Bounce *struct {
		BounceType        string    `json:"bounceType"`
		BounceSubType     string    `json:"bounceSubType"`
		Timestamp         time.Time `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		Timestamp             time.Time `json:"timestamp"`
		ComplaintFeedbackType string    `json:"complaintFeedbackType"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Open *struct {
		Timestamp time.Time `json:"timestamp"`
	} `json:"open"`
	Click *struct {
		Timestamp time.Time `json:"timestamp"`
		Link      string    `json:"link"`
	} `json:"click"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	DeliveryDelay *struct {
		Timestamp time.Time `json:"timestamp"`
		DelayType string    `json:"delayType"`
	} `json:"deliveryDelay"`
	Failure *struct {
		ErrorMessage string `json:"errorMessage"`
	} `json:"failure"`
}

// ParseEvent normalizes the SES event in a verified SNS Notification for config configID. The SNS
// MessageId is the event key: SNS keeps it across its retries.
func ParseEvent(configID string, n SNSMessage) (provider.Event, error) {
	var e sesEvent
	if err := json.Unmarshal([]byte(n.Message), &e); err != nil {
		return provider.Event{}, provider.Malformed("SNS Message is not an SES event: %v", err)
	}
	kind := e.EventType
	if kind == "" {
		kind = e.NotificationType
	}
	if kind == "" || e.Mail.MessageID == "" {
		return provider.Event{}, provider.Malformed("SES event without eventType or mail.messageId")
	}
	if len(e.Mail.MessageID) > 128 {
		return provider.Event{}, provider.Malformed("mail.messageId is too long")
	}
	cb := provider.Event{ProviderConfigID: configID, ProviderType: Type, EventKey: n.MessageID,
		ProviderMessageID: e.Mail.MessageID, OccurredAt: e.Mail.Timestamp, Payload: []byte(n.Message)}
	if len(e.Mail.Destination) > 0 {
		cb.Recipient = e.Mail.Destination[0]
	}
	at := func(t time.Time) {
		if !t.IsZero() {
			cb.OccurredAt = t
		}
	}
	switch kind {
	case "Send":
		cb.Status = message.Accepted
	case "Delivery":
		if e.Delivery == nil {
			return provider.Event{}, provider.Malformed("Delivery event without delivery")
		}
		cb.Status = message.Delivered
		at(e.Delivery.Timestamp)
	case "Bounce":
		b := e.Bounce
		if b == nil {
			return provider.Event{}, provider.Malformed("Bounce event without bounce")
		}
		cb.Status = message.Bounced
		at(b.Timestamp)
		cb.Reason = strings.TrimSpace(b.BounceType + " bounce: " + b.BounceSubType)
		if len(b.BouncedRecipients) > 0 {
			r := b.BouncedRecipients[0]
			cb.Recipient, cb.ProviderCode = r.EmailAddress, r.Status
			if r.DiagnosticCode != "" {
				cb.Reason += " (" + provider.Truncate(r.DiagnosticCode, 300) + ")"
			}
		}
		switch b.BounceType {
		case "Permanent":
			cb.ErrorCode, cb.Suppress = string(provider.InvalidRecipient), "bounce"
		case "Transient":
			cb.ErrorCode = string(provider.MailboxUnavailable)
		default:
			cb.ErrorCode = string(provider.Unknown)
		}
	case "Complaint":
		c := e.Complaint
		if c == nil {
			return provider.Event{}, provider.Malformed("Complaint event without complaint")
		}
		cb.Status, cb.Suppress = message.Complained, "complaint"
		at(c.Timestamp)
		cb.Reason = strings.TrimSpace("complaint " + c.ComplaintFeedbackType)
		if len(c.ComplainedRecipients) > 0 {
			cb.Recipient = c.ComplainedRecipients[0].EmailAddress
		}
	case "Open":
		cb.Status = message.Opened
		if e.Open != nil {
			at(e.Open.Timestamp)
		}
	case "Click":
		cb.Status = message.Clicked
		if e.Click != nil {
			at(e.Click.Timestamp)
			cb.Reason = provider.Truncate(e.Click.Link, 500)
		}
	case "Reject":
		cb.Status, cb.ErrorCode = message.Failed, string(provider.ContentRejected)
		if e.Reject != nil {
			cb.Reason = e.Reject.Reason
		}
	case "Rendering Failure", "RenderingFailure":
		cb.Status, cb.ErrorCode = message.Failed, string(provider.ContentRejected)
		if e.Failure != nil {
			cb.Reason = provider.Truncate(e.Failure.ErrorMessage, 500)
		}
	case "DeliveryDelay":
		cb.Status = message.Delayed
		if d := e.DeliveryDelay; d != nil {
			at(d.Timestamp)
			cb.Reason = d.DelayType
		}
	default:
		// Subscription and future event types: kept in the timeline, changing nothing.
		cb.Status, cb.Reason = message.Accepted, "SES "+provider.Truncate(kind, 40)
	}
	if cb.OccurredAt.IsZero() {
		return provider.Event{}, provider.Malformed("SES event without a timestamp")
	}
	cb.OccurredAt = cb.OccurredAt.UTC()
	return cb, nil
}

// callbacks takes SES events through an SNS HTTPS subscription.
type callbacks struct{ sns *SNSVerifier }

func newCallbacks(env provider.Env) (provider.Callbacks, error) {
	v, err := NewSNSVerifier(env.SNSHostPattern, env.SNSClient)
	if err != nil {
		return nil, err
	}
	if env.SNSPort != "" {
		v.WithPort(env.SNSPort)
	}
	return callbacks{sns: v}, nil
}

// Receive verifies one SNS message; it confirms a subscription to the config's topic, and parses
// a notification's SES event.
func (c callbacks) Receive(ctx context.Context, req provider.CallbackRequest) ([]provider.Event, error) {
	m, err := ParseSNS(req.Body)
	if err != nil {
		return nil, err
	}
	if err := c.sns.Verify(ctx, m); err != nil {
		return nil, err
	}
	// AWS signs every topic's messages alike: only the config's own topic may speak for it.
	if topic := SNSTopic(req.Config.Sender); topic != "" && m.TopicArn != topic {
		return nil, provider.Unverified("TopicArn is not the config's sns_topic_arn")
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := c.sns.Confirm(ctx, m); err != nil {
			// SNS re-sends the confirmation; ErrUnavailable asks for that.
			return nil, fmt.Errorf("%w: topic %s: %w", provider.ErrUnavailable, m.TopicArn, err)
		}
		return nil, nil
	case "UnsubscribeConfirmation":
		return nil, nil
	}
	ev, err := ParseEvent(req.Config.ID, m)
	if err != nil {
		return nil, err
	}
	return []provider.Event{ev}, nil
}
