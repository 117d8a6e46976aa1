package message

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		req    Request
		fields []string // bad fields reported; nil means valid
	}{
		{"sms", Request{Channel: SMS, To: "+14155550123", Text: "hi"}, nil},
		{"sms alphanumeric sender", Request{Channel: SMS, To: "+447700900123", From: "ACME", Text: "hi"}, nil},
		{"sms numeric-only sender id", Request{Channel: SMS, To: "+14155550123", From: "12345", Text: "hi"}, []string{"from"}},
		{"sms max length in characters", Request{Channel: SMS, To: "+14155550123", Text: strings.Repeat("é", MaxSMSTextLen)}, nil},
		{"sms too long", Request{Channel: SMS, To: "+14155550123", Text: strings.Repeat("a", MaxSMSTextLen+1)}, []string{"text"}},
		{"sms leading zero", Request{Channel: SMS, To: "+04155550123", Text: "x"}, []string{"to"}},
		{"sms too many digits", Request{Channel: SMS, To: "+1234567890123456", Text: "x"}, []string{"to"}},
		{"email", Request{Channel: Email, To: "ada@example.com", Subject: "s", Text: "t"}, nil},
		{"email display name", Request{Channel: Email, To: "Ada Lovelace <ada@example.com>", From: "Billing <billing@acme.io>", Subject: "s", HTML: "<p>x</p>"}, nil},
		{"email two recipients", Request{Channel: Email, To: "a@example.com, b@example.com", Subject: "s", Text: "t"}, []string{"to"}},
		{"email crlf in recipient", Request{Channel: Email, To: "a@example.com\r\nBcc: x@example.com", Subject: "s", Text: "t"}, []string{"to"}},
		{"email blank subject", Request{Channel: Email, To: "a@example.com", Subject: "  ", Text: "t"}, []string{"subject"}},
		{"email invalid utf-8", Request{Channel: Email, To: "a@example.com", Subject: "s", Text: "\xff"}, []string{"text"}},
		{"email html too big", Request{Channel: Email, To: "a@example.com", Subject: "s", HTML: strings.Repeat("x", MaxEmailBodyLen+1)}, []string{"html"}},
		{"too much metadata", Request{Channel: SMS, To: "+14155550123", Text: "x", Metadata: manyKeys(MaxMetadataKeys + 1)}, []string{"metadata"}},
		{"metadata value too long", Request{Channel: SMS, To: "+14155550123", Text: "x", Metadata: map[string]string{"k": strings.Repeat("v", MaxMetadataValLen+1)}}, []string{"metadata.k"}},
		{"everything wrong at once", Request{Channel: "fax"}, []string{"channel"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("valid request rejected: %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want a ValidationError, got %v", err)
			}
			got := map[string]bool{}
			for _, f := range verr.Fields {
				got[f.Field] = true
				if f.Message == "" {
					t.Fatalf("field %s has no message", f.Field)
				}
			}
			for _, f := range tc.fields {
				if !got[f] {
					t.Fatalf("%q not reported; got %v", f, verr.Fields)
				}
			}
		})
	}
}

func manyKeys(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[strings.Repeat("k", i+1)] = "v"
	}
	return m
}
