package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/logicspike/comms/pkg/message"
)

// decodeJSON strictly decodes a JSON object body into v: the content type must be JSON, the body
// at most maxBytes, every field known, no key repeated, every string storable (checkJSON), nothing
// after the object. It is the one way a handler reads a body. It returns a problem naming the bad
// field, or nil.
func decodeJSON(r *http.Request, maxBytes int64, v any) *Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
				"the body must be JSON sent as 'Content-Type: application/json'")
		}
	} else {
		return problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"the body must be JSON sent as 'Content-Type: application/json'")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return problem(http.StatusRequestEntityTooLarge, "too-large", "Request too large",
				fmt.Sprintf("the body must be at most %d bytes", maxBytes))
		}
		return problem(http.StatusBadRequest, "malformed", "Malformed request", "could not read the body")
	}
	return decodeBytes(body, v)
}

func decodeBytes(body []byte, v any) *Problem {
	known := knownFields(v)
	// Nearly every body is a plain object whose keys are spelled exactly: one typed decode is then
	// the whole answer. Anything else (a decoding error, data after the object, a key that is
	// unknown, differs in case or is escaped) takes the strict path, which is the reference and
	// names every bad field (FuzzDecodeFastPathAgreesWithStrict holds them to the same answers).
	if keysExact(body, known) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err == nil && len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) == 0 {
			return checkJSON(body)
		}
	}
	return decodeStrict(body, v, known)
}

// decodeStrict decodes in two passes: first into a map, to name every unknown field at once rather
// than the first one the decoder trips on, then into v.
func decodeStrict(body []byte, v any, known map[string]bool) *Problem {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return jsonProblem(err)
	}
	var unknown []message.FieldError
	for name := range fields {
		if !known[name] {
			unknown = append(unknown, message.FieldError{Field: name, Message: "is not a known field"})
		}
	}
	if len(unknown) > 0 {
		sort.Slice(unknown, func(i, j int) bool { return unknown[i].Field < unknown[j].Field })
		return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", unknown...)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // json's case-insensitive matching would let "TO" through otherwise
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	return checkJSON(body)
}

// keysExact reports whether every key of the top-level object in body is in known, spelled
// exactly and without escapes. It does not validate the JSON (the decoder does), and answers
// false when it cannot tell.
func keysExact(body []byte, known map[string]bool) bool {
	depth := 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			start, escaped := i+1, false
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
				}
			}
			if i >= len(body) {
				return false
			}
			if depth != 1 {
				continue
			}
			j := i + 1
			for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\r' || body[j] == '\n') {
				j++
			}
			if j < len(body) && body[j] == ':' && (escaped || !known[string(body[start:i])]) {
				return false
			}
		}
	}
	return true
}

var knownFieldsCache sync.Map // reflect.Type → map[string]bool

// knownFields returns the JSON names of the fields of the struct v points to.
func knownFields(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	if m, ok := knownFieldsCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" {
			name = t.Field(i).Name
		}
		if name != "-" {
			m[name] = true
		}
	}
	knownFieldsCache.Store(t, m)
	return m
}

func jsonProblem(err error) *Problem {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return problem(http.StatusBadRequest, "malformed", "Malformed JSON",
			fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return problem(http.StatusBadRequest, "malformed", "Malformed JSON", "the body must be a JSON object")
		}
		return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: field, Message: "must be a " + jsonKind(typ.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: name, Message: "is not a known field"})
	case errors.Is(err, io.EOF):
		return problem(http.StatusBadRequest, "malformed", "Malformed JSON", "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem(http.StatusBadRequest, "malformed", "Malformed JSON", "the body ends in the middle of a JSON value")
	}
	return problem(http.StatusBadRequest, "malformed", "Malformed JSON", err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "JSON object"
	case "slice", "array":
		return "JSON array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
