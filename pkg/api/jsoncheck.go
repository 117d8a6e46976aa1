package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/logicspike/comms/pkg/message"
)

// checkJSON walks a body the JSON decoder has already accepted and finds what the decoder lets
// through but must not be: a key repeated in one object (encoding/json keeps the last, so two
// readers of the same body could disagree on what it says) and text PostgreSQL cannot store (NUL,
// invalid UTF-8, an unpaired surrogate escape). Every endpoint's body passes through it, so a new
// field is covered without anyone remembering to. It returns nil for a clean body.
func checkJSON(body []byte) *Problem {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
		seen    map[string]bool
	}
	var stack []*frame
	path := func(last string) string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.object && f.key != "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			case !f.object:
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if last != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(last)
		}
		return b.String()
	}
	for i := 0; i < len(body); i++ {
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch body[i] {
		case '{':
			stack = append(stack, &frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, &frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top != nil && top.object {
				top.wantKey = true
			} else if top != nil {
				top.index++
			}
		case '"':
			start := i + 1
			escaped := false
			for i = start; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
				}
			}
			raw := body[start:i]
			if top != nil && top.object && top.wantKey {
				key := string(raw)
				if escaped {
					_ = json.Unmarshal(body[start-1:i+1], &key)
				}
				top.wantKey = false
				top.key = ""
				if bad := unstorable(raw); bad != "" {
					return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
						message.FieldError{Field: orBody(path("")), Message: "has a key that " + bad})
				}
				if top.seen == nil {
					top.seen = map[string]bool{}
				}
				if top.seen[key] {
					return fieldProblem(http.StatusBadRequest, "duplicate-key", "Duplicate JSON key",
						message.FieldError{Field: path(key), Message: "appears more than once in the same object"})
				}
				top.seen[key] = true
				top.key = key
				continue
			}
			if bad := unstorable(raw); bad != "" {
				return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
					message.FieldError{Field: path(""), Message: bad})
			}
		}
	}
	return nil
}

// unstorable says why the raw bytes of a JSON string (between its quotes) cannot be stored as
// PostgreSQL text or jsonb, or "" if they can.
func unstorable(raw []byte) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	for j := 0; j+1 < len(raw); j++ {
		if raw[j] != '\\' {
			continue
		}
		if raw[j+1] != 'u' || j+6 > len(raw) {
			j++
			continue
		}
		r, err := strconv.ParseUint(string(raw[j+2:j+6]), 16, 16)
		if err != nil {
			return "has an invalid \\u escape"
		}
		switch {
		case r == 0:
			return "must not contain NUL (\\u0000)"
		case r >= 0xDC00 && r <= 0xDFFF:
			return "has an unpaired surrogate escape"
		case r >= 0xD800 && r <= 0xDBFF:
			if j+12 > len(raw) || raw[j+6] != '\\' || raw[j+7] != 'u' {
				return "has an unpaired surrogate escape"
			}
			lo, err := strconv.ParseUint(string(raw[j+8:j+12]), 16, 16)
			if err != nil || lo < 0xDC00 || lo > 0xDFFF {
				return "has an unpaired surrogate escape"
			}
			j += 11
			continue
		}
		j += 5
	}
	return ""
}

// checkURL holds the path and the query to the same rule as bodies: text that cannot be stored
// or compared in PostgreSQL is a 400 naming where it is, before any handler sees it.
func checkURL(r *http.Request) *Problem {
	if !storableText(r.URL.Path) {
		return fieldProblem(http.StatusBadRequest, "malformed", "Malformed request",
			message.FieldError{Field: "path", Message: "must be valid UTF-8 without NUL"})
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	for name, vals := range r.URL.Query() {
		ok := storableText(name)
		for _, v := range vals {
			ok = ok && storableText(v)
		}
		if !ok {
			return fieldProblem(http.StatusBadRequest, "malformed", "Malformed request",
				message.FieldError{Field: strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", ""), "\uFFFD"), Message: "must be valid UTF-8 without NUL"})
		}
	}
	return nil
}

func orBody(field string) string {
	if field == "" {
		return "body"
	}
	return field
}

func storableText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
