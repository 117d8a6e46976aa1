package api_test

import (
	"net/http"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// A send may name a recipient profile instead of an address: the address comes from the profile
// for the channel (or from to, which wins), its locale picks the template's locale, its fields are
// recipient.* in the template, and the message records it, so ?recipient= lists what the person
// was sent. A profile without the channel's address, or no profile, is a 422 naming the field,
// alone and per item of a batch; a repeated key replays the first answer after the profile changed.
func TestSendToARecipientProfile(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, key := s.Tenant()
	mustDo(t, s, 201, "PUT", "/v1/recipients/u_1", key, map[string]any{"email": "ada@example.com", "phone": "+14155550123",
		"locale": "pt-BR", "data": map[string]any{"name": "Ada"}}, &api.Recipient{})
	mustDo(t, s, 201, "PUT", "/v1/recipients/u_2", key, map[string]any{"email": "bob@example.com"}, &api.Recipient{})
	mustDo(t, s, 201, "POST", "/v1/templates", key, map[string]any{"key": "hello", "name": "Hello", "channel": "sms",
		"variables": rawJSON(`{"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"], "additionalProperties": false}`)}, &api.Template{})
	for i, v := range []map[string]any{
		{"locale": "en", "text": "Hi {{recipient.data.name}}, {{code}} ({{recipient.id}})"},
		{"locale": "pt", "text": "Olá {{recipient.data.name}}, {{code}}"},
	} {
		mustDo(t, s, 201, "POST", "/v1/templates/hello/versions", key, v, &api.TemplateVersion{})
		mustDo(t, s, 200, "POST", "/v1/templates/hello/versions/"+string(rune('1'+i))+"/activate", key, nil, &api.TemplateVersion{})
	}
	// only the profile's fields are recipient.*
	if f := problemFields(t, s, 422, "POST", "/v1/templates/hello/versions", key, map[string]any{"text": "{{recipient.nickname}} {{code}}"}); len(f) == 0 {
		t.Fatal("a version printing recipient.nickname was accepted")
	}
	get := func(id string) message.Message {
		t.Helper()
		var m message.Message
		mustDo(t, s, 200, "GET", "/v1/messages/"+id, key, nil, &m)
		return m
	}

	m := get(s.Send(key, "", message.Request{Recipient: "u_1", Template: &message.TemplateRef{Key: "hello", Data: map[string]any{"code": "7"}}}))
	if m.To != "+14155550123" || m.Text != "Olá Ada, 7" || m.Template == nil || m.Template.Locale != "pt" || m.RecipientID != "u_1" {
		t.Errorf("template send to u_1: to %q text %q template %+v recipient %q", m.To, m.Text, m.Template, m.RecipientID)
	}
	m = get(s.Send(key, "", message.Request{Recipient: "u_1", Template: &message.TemplateRef{Key: "hello", Locale: "en", Data: map[string]any{"code": "8"}}}))
	if m.Text != "Hi Ada, 8 (u_1)" {
		t.Errorf("the request's locale wins over the profile's: %q", m.Text)
	}
	m = get(s.Send(key, "", message.Request{Channel: message.Email, Recipient: "u_1", Subject: "s", Text: "t"}))
	if m.To != "ada@example.com" || m.RecipientID != "u_1" {
		t.Errorf("email to u_1: to %q recipient %q", m.To, m.RecipientID)
	}
	m = get(s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550100", Recipient: "u_1", Text: "t"}))
	if m.To != "+14155550100" || m.RecipientID != "u_1" {
		t.Errorf("to and recipient: to %q recipient %q", m.To, m.RecipientID)
	}
	for _, c := range []struct {
		req   message.Request
		field string
	}{
		{message.Request{Channel: message.SMS, Recipient: "u_2", Text: "x"}, "recipient.phone"},
		{message.Request{Channel: message.SMS, Recipient: "u_9", Text: "x"}, "recipient"},
		{message.Request{Channel: message.SMS, Recipient: "ada@example.com", Text: "x"}, "recipient"},
		{message.Request{Recipient: "u_2", Template: &message.TemplateRef{Key: "hello", Data: map[string]any{"code": "1"}}}, "recipient.phone"},
	} {
		if f := problemFields(t, s, 422, "POST", "/v1/messages", key, c.req); len(f) != 1 || f[c.field] == "" {
			t.Errorf("%+v: %v, want 422 naming %s alone", c.req, f, c.field)
		}
	}

	res := sendBatch(t, s, key, "", message.BatchRequest{Template: &message.TemplateRef{Key: "hello", Data: map[string]any{"code": "9"}},
		Messages: []message.BatchItem{item(message.Request{Recipient: "u_1"}), item(message.Request{Recipient: "u_2"}),
			item(message.Request{Recipient: "u_9"}), item(message.Request{To: "+14155550199"})}}, http.StatusOK)
	if res.Accepted != 2 || len(res.Items) != 4 {
		t.Fatalf("batch: %+v", res)
	}
	for i, want := range map[int]string{1: "messages[1].recipient.phone", 2: "messages[2].recipient"} {
		if it := res.Items[i]; it.Error == nil || len(it.Error.Errors) != 1 || it.Error.Errors[0].Field != want {
			t.Errorf("batch item %d: %+v, want %s", i, it, want)
		}
	}
	if m := get(res.Items[0].ID); m.Text != "Olá Ada, 9" || m.RecipientID != "u_1" {
		t.Errorf("batch item 0: %q %q", m.Text, m.RecipientID)
	}
	if m := get(res.Items[3].ID); m.Text != "Hi , 9 ()" || m.RecipientID != "" {
		t.Errorf("batch item 3, to an address: %q %q; want recipient.* empty", m.Text, m.RecipientID)
	}

	var page struct{ Data []message.Message }
	mustDo(t, s, 200, "GET", "/v1/messages?recipient=u_1", key, nil, &page)
	if len(page.Data) != 5 {
		t.Errorf("?recipient=u_1 listed %d messages, want 5", len(page.Data))
	}
	for _, m := range page.Data {
		if m.RecipientID != "u_1" {
			t.Errorf("?recipient=u_1 listed %s to %q", m.ID, m.RecipientID)
		}
	}

	// a retry replays the first answer even once the profile changed
	req := message.Request{Channel: message.SMS, Recipient: "u_1", Text: "once"}
	first := s.Send(key, "k-1", req)
	mustDo(t, s, 200, "PATCH", "/v1/recipients/u_1", key, map[string]any{"phone": "+14155550124"}, &api.Recipient{})
	if again := s.Send(key, "k-1", req); again != first {
		t.Errorf("retry after the profile changed: %s, want the first %s", again, first)
	}
}
