package api

import (
	"bytes"
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
	stack := make([]jsonFrame, 0, 8) // one per open object or array
	keys := make([][]byte, 0, 32)    // the keys of the open objects, each object's after its parent's
	path := func(last string) string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.object && len(f.key) > 0:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.Write(f.key)
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
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch body[i] {
		case '{':
			stack = append(stack, jsonFrame{object: true, wantKey: true, from: len(keys)})
		case '[':
			stack = append(stack, jsonFrame{from: len(keys)})
		case '}', ']':
			keys = keys[:top.from]
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
			if bad := unstorable(raw); bad != "" {
				if top != nil && top.object && top.wantKey {
					top.key = nil
					return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
						message.FieldError{Field: orBody(path("")), Message: "has a key that " + bad})
				}
				return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
					message.FieldError{Field: path(""), Message: bad})
			}
			if top == nil || !top.object || !top.wantKey {
				continue
			}
			key := raw
			if escaped {
				var k string
				_ = json.Unmarshal(body[start-1:i+1], &k)
				key = []byte(k)
			}
			top.wantKey, top.key = false, nil
			if top.seenBefore(&keys, key) {
				return fieldProblem(http.StatusBadRequest, "duplicate-key", "Duplicate JSON key",
					message.FieldError{Field: path(string(key)), Message: "appears more than once in the same object"})
			}
			top.key = key
		}
	}
	return nil
}

// jsonFrame is an open object or array. Keys are compared as the body's own bytes, unescaped
// only when they hold an escape, so a clean body costs no allocation per key.
type jsonFrame struct {
	object  bool
	wantKey bool
	key     []byte
	index   int
	from    int                 // where this object's keys start in the walk's list
	many    map[string]struct{} // this object's keys, once they are too many to compare one by one
}

// seenBefore reports whether key was already in the object, and remembers it in keys (the walk's
// list, whose tail from f.from is this object's) or, for a big object, in its own map.
func (f *jsonFrame) seenBefore(keys *[][]byte, key []byte) bool {
	if f.many != nil {
		if _, ok := f.many[string(key)]; ok {
			return true
		}
		f.many[string(key)] = struct{}{}
		return false
	}
	mine := (*keys)[f.from:]
	for _, k := range mine {
		if bytes.Equal(k, key) {
			return true
		}
	}
	if len(mine) < fewKeys {
		*keys = append(*keys, key)
		return false
	}
	f.many = make(map[string]struct{}, 2*fewKeys)
	for _, k := range mine {
		f.many[string(k)] = struct{}{}
	}
	f.many[string(key)] = struct{}{}
	*keys = (*keys)[:f.from]
	return false
}

// fewKeys is how many keys of one object are compared one by one; beyond, a map keeps a hostile
// object of many keys from costing quadratic time.
const fewKeys = 16

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
