package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/logicspike/comms/pkg/message"
)

// Fields collects what is wrong with a config's credentials and sender, so one answer names every
// bad field ("credentials.account_sid: ...").
type Fields struct{ errs []message.FieldError }

// Add records a bad field.
func (f *Fields) Add(field, format string, args ...any) {
	f.errs = append(f.errs, message.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err is a *message.ValidationError, or nil when nothing was added.
func (f *Fields) Err() error {
	if len(f.errs) == 0 {
		return nil
	}
	return &message.ValidationError{Fields: f.errs}
}

// Decode decodes the JSON object raw (named prefix, "credentials" or "sender") into v, recording
// every unknown field and type mismatch. Field names match exactly: a near-miss such as
// "Account_Sid" is reported, not silently folded.
func (f *Fields) Decode(prefix string, raw json.RawMessage, v any) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage(`{}`)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		f.Add(prefix, "must be a JSON object")
		return
	}
	known := jsonFieldNames(v)
	var unknown []string
	for k := range m {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		f.Add(prefix+"."+k, "is not a known field")
		delete(m, k)
	}
	clean, _ := json.Marshal(m)
	if err := json.Unmarshal(clean, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			f.Add(prefix+"."+te.Field, "must be a %s", te.Type.String())
			return
		}
		f.Add(prefix, "is invalid: %v", err)
	}
}

// Required records field as missing when s is empty, and as invalid when it holds control
// characters (which would let a value smuggle extra lines into a protocol header).
func (f *Fields) Required(field, s string) bool {
	if strings.TrimSpace(s) == "" {
		f.Add(field, "is required")
		return false
	}
	return f.Clean(field, s)
}

// Clean records field as invalid when s holds control characters or invalid UTF-8.
func (f *Fields) Clean(field, s string) bool {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		f.Add(field, "must not contain control characters")
		return false
	}
	return true
}

// jsonFieldNames is the set of keys encoding/json reads into v, a pointer to a struct: its
// exported fields' JSON names (omitempty ones included).
func jsonFieldNames(v any) map[string]bool {
	out := map[string]bool{}
	for _, f := range FormFields(v) {
		out[f.Name] = true
	}
	return out
}

// Mask shows enough of an identifier to recognise it and none of a secret: "AC12…89ab".
// Short values show only their last two characters.
func Mask(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) >= 12:
		return s[:4] + "…" + s[len(s)-4:]
	case len(s) >= 6:
		return "…" + s[len(s)-2:]
	default:
		return "…"
	}
}
