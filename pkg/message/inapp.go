package message

import (
	"bytes"
	"encoding/json"
	"net/url"
	"unicode/utf8"
)

// Limits of an in_app message (docs/inbox.md).
const (
	MaxInAppTitleLen  = 200  // characters
	MaxInAppBodyLen   = 5000 // characters
	MaxInAppURLLen    = 2048 // bytes
	MaxInAppDataBytes = 4096 // bytes of JSON
)

// validateInApp checks an in_app request: a recipient's inbox (To is the recipient's id, from
// its profile), content in in_app with a title or a body, and none of the other channels' fields.
func validateInApp(r *Request, add func(field, format string, args ...any)) {
	if r.To == "" {
		add("recipient", "is required for in_app: the profile whose inbox the message goes to")
	}
	for _, f := range []struct{ name, val string }{{"from", r.From}, {"subject", r.Subject}, {"text", r.Text}, {"html", r.HTML}} {
		if f.val != "" {
			add(f.name, "is not allowed for in_app: the content is in_app.title, in_app.body, in_app.action_url and in_app.data")
		}
	}
	c := r.InApp
	if c == nil || c.Title == "" && c.Body == "" {
		add("in_app", "is required for in_app, with a title or a body")
		return
	}
	if n := utf8.RuneCountInString(c.Title); n > MaxInAppTitleLen || !utf8.ValidString(c.Title) {
		add("in_app.title", "must be valid UTF-8 of at most %d characters", MaxInAppTitleLen)
	}
	if n := utf8.RuneCountInString(c.Body); n > MaxInAppBodyLen || !utf8.ValidString(c.Body) {
		add("in_app.body", "must be valid UTF-8 of at most %d characters", MaxInAppBodyLen)
	}
	if c.ActionURL != "" {
		u, err := url.Parse(c.ActionURL)
		if err != nil || len(c.ActionURL) > MaxInAppURLLen || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
			add("in_app.action_url", "must be an absolute http(s) URL of at most %d bytes", MaxInAppURLLen)
		}
	}
	if len(c.Data) > 0 {
		var obj map[string]json.RawMessage
		if len(c.Data) > MaxInAppDataBytes || json.Unmarshal(c.Data, &obj) != nil || bytes.Equal(bytes.TrimSpace(c.Data), []byte("null")) {
			add("in_app.data", "must be a JSON object of at most %d bytes", MaxInAppDataBytes)
		}
	}
}
