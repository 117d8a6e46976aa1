package message

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Size limits, documented in docs/api.md. They bound what one message may cost to store and send.
const (
	MaxRecipientLen    = 320        // RFC 5321: 64 local + @ + 255 domain
	MaxSubjectLen      = 998        // RFC 5322 line length limit
	MaxSMSTextLen      = 1600       // characters; Twilio's limit for a concatenated SMS
	MaxEmailBodyLen    = 512 << 10  // bytes, for text and for html each
	MaxMetadataKeys    = 20         // entries
	MaxMetadataKeyLen  = 40         // bytes
	MaxMetadataValLen  = 500        // bytes
	MaxRequestBodySize = 1200 << 10 // bytes of JSON, enforced before decoding
)

// FieldError names one bad field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every bad field of a request.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

var (
	e164     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	senderID = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	hasAlpha = regexp.MustCompile(`[A-Za-z]`)
)

// Validate checks r and returns a *ValidationError naming every bad field, or nil.
// It normalises nothing: what is stored is what was sent.
func (r *Request) Validate() error {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if r.SendAt != nil && time.Until(*r.SendAt) > MaxScheduleAhead {
		add("send_at", "is more than 30 days ahead")
	}
	if !r.Category.BuiltIn() && CheckCategoryKey(string(r.Category)) != "" {
		add("category", `must be "transactional", "marketing" or one of the tenant's categories (GET /v1/categories)`)
	}
	switch r.Channel {
	case SMS:
		if r.To == "" {
			add("to", "is required")
		} else if !e164.MatchString(r.To) {
			add("to", "must be an E.164 phone number such as +14155550123")
		}
		if r.From != "" && !validSMSSender(r.From) {
			add("from", "must be an E.164 phone number or an alphanumeric sender ID of 1-11 characters")
		}
		if r.Subject != "" {
			add("subject", "is not allowed for sms")
		}
		if r.HTML != "" {
			add("html", "is not allowed for sms")
		}
		if r.Text == "" {
			add("text", "is required for sms")
		} else if n := utf8.RuneCountInString(r.Text); n > MaxSMSTextLen {
			add("text", "is %d characters; at most %d are allowed for sms", n, MaxSMSTextLen)
		}
	case Email:
		if r.To == "" {
			add("to", "is required")
		} else if msg := checkAddress(r.To); msg != "" {
			add("to", "%s", msg)
		}
		if r.From != "" {
			if msg := checkAddress(r.From); msg != "" {
				add("from", "%s", msg)
			}
		}
		if strings.TrimSpace(r.Subject) == "" {
			add("subject", "is required for email")
		} else if len(r.Subject) > MaxSubjectLen {
			add("subject", "is %d bytes; at most %d are allowed", len(r.Subject), MaxSubjectLen)
		} else if strings.ContainsAny(r.Subject, "\r\n") {
			add("subject", "must not contain line breaks")
		}
		if r.Text == "" && r.HTML == "" {
			add("text", "text or html is required for email")
		}
		if len(r.Text) > MaxEmailBodyLen {
			add("text", "is %d bytes; at most %d are allowed", len(r.Text), MaxEmailBodyLen)
		}
		if len(r.HTML) > MaxEmailBodyLen {
			add("html", "is %d bytes; at most %d are allowed", len(r.HTML), MaxEmailBodyLen)
		}
	case InApp:
		validateInApp(r, add)
	case Push:
		validatePush(r, add)
	case "":
		add("channel", `is required: "sms", "email", "push" or "in_app"`)
	default:
		add("channel", `must be "sms", "email", "push" or "in_app"`)
	}
	if r.InApp != nil && r.Channel != InApp && (r.Channel.Valid() || r.Channel == Push) {
		add("in_app", "is only for the in_app channel")
	}
	if r.Push != nil && r.Channel != Push && (r.Channel.Valid() || r.Channel == InApp) {
		add("push", "is only for the push channel")
	}

	for _, f := range []struct{ name, val string }{{"text", r.Text}, {"html", r.HTML}, {"subject", r.Subject}} {
		if !utf8.ValidString(f.val) {
			add(f.name, "must be valid UTF-8")
		}
	}

	if len(r.Metadata) > MaxMetadataKeys {
		add("metadata", "has %d keys; at most %d are allowed", len(r.Metadata), MaxMetadataKeys)
	}
	for k, v := range r.Metadata {
		switch {
		case k == "" || len(k) > MaxMetadataKeyLen:
			add("metadata", "key %q must be 1-%d bytes", truncate(k, 50), MaxMetadataKeyLen)
		case len(v) > MaxMetadataValLen:
			add("metadata."+k, "is %d bytes; at most %d are allowed", len(v), MaxMetadataValLen)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: errs}
}

// validSMSSender accepts an E.164 number or an alphanumeric sender ID (which must contain a
// letter, or carriers read it as a short code).
func validSMSSender(s string) bool {
	return e164.MatchString(s) || (senderID.MatchString(s) && hasAlpha.MatchString(s))
}

// checkAddress returns why s is not a single RFC 5322 address, or "".
func checkAddress(s string) string {
	if len(s) > MaxRecipientLen {
		return fmt.Sprintf("is %d bytes; at most %d are allowed", len(s), MaxRecipientLen)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "must not contain line breaks"
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return "must be an RFC 5322 email address such as ada@example.com"
	}
	at := strings.LastIndexByte(addr.Address, '@')
	if at <= 0 || !strings.Contains(addr.Address[at+1:], ".") {
		return "must be an RFC 5322 email address with a fully qualified domain"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RecipientKey is how a recipient is compared for suppression: the bare email address, lower-cased
// (a display name or a change of case is the same mailbox), or the E.164 number as given.
func RecipientKey(ch Channel, to string) string {
	if ch != Email {
		return strings.TrimSpace(to)
	}
	if addr, err := mail.ParseAddress(to); err == nil {
		return strings.ToLower(addr.Address)
	}
	return strings.ToLower(strings.TrimSpace(to))
}

// recipientID is what a tenant's id for a person may be: not an address (an erasure finds people
// by their addresses, and an id must not be one).
var recipientID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// CheckRecipientID names what is wrong with a recipient profile's id, or returns "".
func CheckRecipientID(id string) string {
	if !recipientID.MatchString(id) {
		return "must be 1 to 128 letters, digits, '.', '_', ':' or '-' (not an address)"
	}
	return ""
}

// categoryKey is what a tenant's category key may be.
var categoryKey = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,63}$`)

// CheckCategoryKey names what is wrong with a tenant's category key, or returns "".
func CheckCategoryKey(key string) string {
	if !categoryKey.MatchString(key) {
		return "must be 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a letter"
	}
	return ""
}

// BuiltIn reports whether c is one of the categories every tenant has.
func (c Category) BuiltIn() bool { return c == "" || c == Transactional || c == Marketing }
