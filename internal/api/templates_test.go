package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/client"
	"github.com/logicspike/comms/pkg/message"
)

const otpSchema = `{"type": "object", "required": ["code"], "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}, "name": {"type": "string"}}}`

// mustDo sends a request and fails the test unless it answers want.
func mustDo(t *testing.T, s *stacktest.Stack, want int, method, path, key string, body, out any) {
	t.Helper()
	var prob api.Problem
	dst := out
	if out == nil {
		dst = &prob
	}
	resp := s.Do(method, path, key, body, nil, dst)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %+v %+v, want %d", method, path, resp.StatusCode, out, prob, want)
	}
}

// problemFields sends a request expecting a problem with status, and returns its field names.
func problemFields(t *testing.T, s *stacktest.Stack, status int, method, path, key string, body any) map[string]string {
	t.Helper()
	var prob api.Problem
	resp := s.Do(method, path, key, body, nil, &prob)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d %+v, want %d", method, path, resp.StatusCode, prob, status)
	}
	out := map[string]string{}
	for _, f := range prob.Errors {
		out[f.Field] = f.Message
	}
	return out
}

func newOTPTemplate(t *testing.T, s *stacktest.Stack, key string) {
	t.Helper()
	mustDo(t, s, 201, "POST", "/v1/templates", key, map[string]any{"key": "otp", "name": "Login code", "channel": "sms", "variables": rawJSON(otpSchema)}, &api.Template{})
	for i, v := range []map[string]any{
		{"locale": "en", "text": "Your code is {{code}}"},
		{"locale": "fr", "text": "Votre code est {{code}}"},
	} {
		var ver api.TemplateVersion
		mustDo(t, s, 201, "POST", "/v1/templates/otp/versions", key, v, &ver)
		if ver.Version != i+1 || ver.Active {
			t.Fatalf("version %d: %+v", i+1, ver)
		}
		mustDo(t, s, 200, "POST", fmt.Sprintf("/v1/templates/otp/versions/%d/activate", ver.Version), key, nil, &ver)
	}
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// A tenant creates a template with two locales, previews it, and sends by it: the stored message
// is exactly the rendered body, with the version and the locale actually used after fallback.
func TestTemplateSendRecordsWhatWasRendered(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	newOTPTemplate(t, s, key)

	var tpl api.Template
	mustDo(t, s, 200, "GET", "/v1/templates/otp", key, nil, &tpl)
	if tpl.ActiveVersions["en"] != 1 || tpl.ActiveVersions["fr"] != 2 || tpl.DefaultLocale != "en" || tpl.Category != message.Transactional {
		t.Fatalf("template: %+v", tpl)
	}
	var prev templates.Preview
	mustDo(t, s, 200, "POST", "/v1/templates/otp/preview", key, map[string]any{"locale": "fr-CA", "data": map[string]any{"code": "424242"}}, &prev)
	if prev.Text != "Votre code est 424242" || prev.Version != 2 || prev.Locale != "fr" || prev.SMS == nil || prev.SMS.Segments != 1 || prev.SMS.Encoding != message.GSM7 {
		t.Fatalf("preview: %+v", prev)
	}
	if f := problemFields(t, s, 422, "POST", "/v1/templates/otp/preview", key, map[string]any{"data": map[string]any{"name": "x"}}); f["data.code"] != "required" {
		t.Fatalf("preview without code: %v", f)
	}

	for _, tc := range []struct{ locale, text, used string }{
		{"fr-CA", "Votre code est 111111", "fr"},
		{"de", "Your code is 111111", "en"},
		{"", "Your code is 111111", "en"},
	} {
		id := s.Send(key, "", message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "otp", Locale: tc.locale, Data: map[string]any{"code": "111111"}}})
		var m message.Message
		mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
		wantVersion := map[string]int{"en": 1, "fr": 2}[tc.used]
		if m.Text != tc.text || m.Channel != message.SMS || m.Template == nil || *m.Template != (message.TemplateUse{Key: "otp", Version: wantVersion, Locale: tc.used}) || m.SMS == nil {
			t.Errorf("locale %q: %+v template %+v", tc.locale, m, m.Template)
		}
	}
	s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550123", Text: "ad hoc"})
	var page struct{ Data []message.Message }
	mustDo(t, s, 200, "GET", "/v1/messages?template=otp", key, nil, &page)
	if len(page.Data) != 3 {
		t.Errorf("?template=otp listed %d messages, want 3", len(page.Data))
	}

	// A pinned version renders that version, whatever is active.
	id := s.Send(key, "", message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "otp", Version: 2, Data: map[string]any{"code": "222222"}}})
	var m message.Message
	mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
	if m.Text != "Votre code est 222222" || m.Template.Version != 2 {
		t.Errorf("pinned: %+v", m)
	}
}

// Every refusal names its field, and records nothing.
func TestTemplateSendRefusalsNameTheField(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	_, other := s.Tenant()
	newOTPTemplate(t, s, key)
	send := func(req message.Request) map[string]string {
		return problemFields(t, s, 422, "POST", "/v1/messages", key, req)
	}
	ref := func(data map[string]any) *message.TemplateRef { return &message.TemplateRef{Key: "otp", Data: data} }
	for name, tc := range map[string]struct {
		req   message.Request
		field string
	}{
		"missing variable":  {message.Request{To: "+14155550123", Template: ref(map[string]any{})}, "template.data.code"},
		"wrong type":        {message.Request{To: "+14155550123", Template: ref(map[string]any{"code": 123456})}, "template.data.code"},
		"pattern":           {message.Request{To: "+14155550123", Template: ref(map[string]any{"code": "12"})}, "template.data.code"},
		"unknown key":       {message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "nope"}}, "template.key"},
		"no key":            {message.Request{To: "+14155550123", Template: &message.TemplateRef{}}, "template.key"},
		"channel mismatch":  {message.Request{Channel: message.Email, To: "a@example.com", Template: ref(map[string]any{"code": "123456"})}, "channel"},
		"body and template": {message.Request{To: "+14155550123", Text: "x", Template: ref(map[string]any{"code": "123456"})}, "text"},
		"bad locale":        {message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "otp", Locale: "??", Data: map[string]any{"code": "123456"}}}, "template.locale"},
		"no such version":   {message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "otp", Version: 9, Data: map[string]any{"code": "123456"}}}, "template.version"},
		"bad recipient":     {message.Request{To: "12", Template: ref(map[string]any{"code": "123456"})}, "to"},
	} {
		if f := send(tc.req); f[tc.field] == "" {
			t.Errorf("%s: faults %v, want one on %s", name, f, tc.field)
		}
	}
	// Another tenant's template does not exist for this one.
	if f := problemFields(t, s, 422, "POST", "/v1/messages", other, message.Request{To: "+14155550123", Template: ref(map[string]any{"code": "123456"})}); f["template.key"] == "" {
		t.Errorf("other tenant's send: %v", f)
	}
	mustDo(t, s, 404, "GET", "/v1/templates/otp", other, nil, nil)
	mustDo(t, s, 404, "POST", "/v1/templates/otp/versions/1/activate", other, nil, nil)
	if counts, _ := s.CountByStatus(t.Context()); len(counts) != 0 {
		t.Errorf("refused sends recorded messages: %v", counts)
	}

	// Archived: sends stop, history stays readable.
	mustDo(t, s, 204, "DELETE", "/v1/templates/otp", key, nil, nil)
	if f := send(message.Request{To: "+14155550123", Template: ref(map[string]any{"code": "123456"})}); f["template.key"] == "" {
		t.Errorf("archived template still sends: %v", f)
	}
	var tpl api.Template
	mustDo(t, s, 200, "GET", "/v1/templates/otp", key, nil, &tpl)
	var versions struct{ Data []api.TemplateVersion }
	mustDo(t, s, 200, "GET", "/v1/templates/otp/versions", key, nil, &versions)
	if !tpl.Archived || len(versions.Data) != 2 || versions.Data[0].Version != 2 {
		t.Errorf("archived template: %+v, versions %+v", tpl, versions.Data)
	}
	var list struct{ Data []api.Template }
	mustDo(t, s, 200, "GET", "/v1/templates", key, nil, &list)
	if len(list.Data) != 0 {
		t.Errorf("archived template listed by default: %+v", list.Data)
	}
}

// A version is checked when it is created: syntax errors and undeclared variables are 422
// naming the field and the line; the channel's rules apply.
func TestTemplateVersionFaults(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	mustDo(t, s, 201, "POST", "/v1/templates", key, map[string]any{"key": "receipt", "name": "Receipt", "channel": "email",
		"variables": rawJSON(`{"type": "object", "properties": {"name": {"type": "string"}, "items": {"type": "array", "items": {"type": "object", "properties": {"title": {"type": "string"}}}}}}`)}, &api.Template{})
	for _, tc := range []struct {
		body         map[string]any
		field, inMsg string
	}{
		{map[string]any{"subject": "Hi {{name}}", "html": "<p>Hello</p>\n<p>{{naem}}</p>"}, "html", "line 2: variable naem is not declared"},
		{map[string]any{"subject": "Hi {{name}}", "text": "{{#each items}}{{price}}{{/each}}"}, "text", "variable price"},
		{map[string]any{"subject": "Hi {{#if name}}", "text": "x"}, "subject", "Parse error on line 1"},
		{map[string]any{"text": "no subject"}, "subject", "required"},
		{map[string]any{"subject": "s", "text": "x", "locale": "??"}, "locale", "BCP 47"},
	} {
		if f := problemFields(t, s, 422, "POST", "/v1/templates/receipt/versions", key, tc.body); !strings.Contains(f[tc.field], tc.inMsg) {
			t.Errorf("%v: faults %v, want %s: …%s…", tc.body, f, tc.field, tc.inMsg)
		}
	}
	var tpl api.Template
	mustDo(t, s, 200, "GET", "/v1/templates/receipt", key, nil, &tpl)
	var versions struct{ Data []api.TemplateVersion }
	mustDo(t, s, 200, "GET", "/v1/templates/receipt/versions", key, nil, &versions)
	if len(versions.Data) != 0 {
		t.Errorf("refused versions were stored: %+v", versions.Data)
	}
	if f := problemFields(t, s, 409, "POST", "/v1/templates", key, map[string]any{"key": "receipt", "name": "again", "channel": "email"}); f["key"] == "" {
		t.Errorf("duplicate key: %v", f)
	}
	if f := problemFields(t, s, 422, "POST", "/v1/templates", key, map[string]any{"key": "Bad Key", "name": "x", "channel": "fax",
		"variables": rawJSON(`{"type": "object", "properties": {"a": {"$ref": "file:///etc/passwd"}}}`)}); f["key"] == "" || f["channel"] == "" || f["variables"] == "" {
		t.Errorf("bad template: %v", f)
	}

	// Hostile data renders inert in html and as given in text.
	var v api.TemplateVersion
	mustDo(t, s, 201, "POST", "/v1/templates/receipt/versions", key, map[string]any{"subject": "Hi {{name}}", "text": "Hi {{name}}", "html": "<p>Hi {{name}}</p>"}, &v)
	mustDo(t, s, 200, "POST", "/v1/templates/receipt/versions/1/activate", key, nil, &v)
	id := s.Send(key, "", message.Request{To: "a@example.com", Template: &message.TemplateRef{Key: "receipt", Data: map[string]any{"name": "<img src=x onerror=alert(1)>"}}})
	var m message.Message
	mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
	if m.HTML != "<p>Hi &lt;img src=x onerror=alert(1)&gt;</p>" || m.Text != "Hi <img src=x onerror=alert(1)>" || m.Subject != "Hi <img src=x onerror=alert(1)>" {
		t.Errorf("hostile data: subject %q text %q html %q", m.Subject, m.Text, m.HTML)
	}
}

// Activation racing sends: every message renders exactly one version, the one it records.
func TestActivationRacingSendsRendersOneVersion(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	newOTPTemplate(t, s, key)
	var v3 api.TemplateVersion
	mustDo(t, s, 201, "POST", "/v1/templates/otp/versions", key, map[string]any{"locale": "en", "text": "Code: {{code}}"}, &v3)

	var wg sync.WaitGroup
	ids := make(chan string, 400)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				acc, err := s.API(key).SendMessage(t.Context(), client.MessageRequest{To: "+14155550123", Template: client.TemplateRef{Key: "otp", Data: map[string]any{"code": "999999"}}})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- acc.ID
			}
		}()
	}
	for i := 0; i < 20; i++ {
		n := []int{1, 3}[i%2]
		var v api.TemplateVersion
		mustDo(t, s, http.StatusOK, "POST", fmt.Sprintf("/v1/templates/otp/versions/%d/activate", n), key, nil, &v)
	}
	wg.Wait()
	close(ids)
	seen := map[int]int{}
	for id := range ids {
		var m message.Message
		mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
		want := map[int]string{1: "Your code is 999999", 3: "Code: 999999"}[m.Template.Version]
		if m.Text != want {
			t.Fatalf("%s records version %d but reads %q", id, m.Template.Version, m.Text)
		}
		seen[m.Template.Version]++
	}
	// The last activation (version 3) is what the next send renders, on this process at once.
	id := s.Send(key, "", message.Request{To: "+14155550123", Template: &message.TemplateRef{Key: "otp", Data: map[string]any{"code": "000000"}}})
	var m message.Message
	mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
	if m.Text != "Code: 000000" {
		t.Errorf("after activating version 3: %q (versions seen during the race: %v)", m.Text, seen)
	}
}
