package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Render turns a send request naming a template into the plain request that is stored and sent:
// channel, subject, text and html from the version its locale resolves to (or the pinned one),
// and category from the template unless the request sets one. It returns the version and locale
// used. Errors: *message.ValidationError naming template.key, template.locale, template.version
// or each bad template.data field; anything else is the store's. With a recipient profile to,
// the template renders with it as recipient.* (unless the data holds its own recipient).
func (s *Service) Render(ctx context.Context, tenantID string, req message.Request, to *domain.Recipient) (message.Request, *message.TemplateUse, error) {
	ref := req.Template
	var faults []message.FieldError
	add := func(field, msg string) { faults = append(faults, message.FieldError{Field: field, Message: msg}) }
	rendered := []struct{ name, val string }{{"subject", req.Subject}, {"text", req.Text}, {"html", req.HTML}}
	if req.Push != nil {
		rendered = append(rendered, struct{ name, val string }{"push.title", req.Push.Title}, struct{ name, val string }{"push.body", req.Push.Body})
	}
	if req.InApp != nil {
		rendered = append(rendered, struct{ name, val string }{"in_app.title", req.InApp.Title}, struct{ name, val string }{"in_app.body", req.InApp.Body})
	}
	for _, f := range rendered {
		if f.val != "" {
			add(f.name, "must be absent when template is given: the template renders it")
		}
	}
	if ref.Key == "" {
		add("template.key", "is required")
	}
	if ref.Version < 0 {
		add("template.version", "must be a version number, or absent for the active version")
	}
	loc := ""
	if ref.Locale != "" {
		var err error
		if loc, err = CanonicalLocale(ref.Locale); err != nil {
			add("template.locale", err.Error())
		}
	}
	if len(faults) > 0 {
		return req, nil, invalid(faults...)
	}
	e, err := s.cache.get(ctx, s.store, tenantID, ref.Key)
	if errors.Is(err, store.ErrNotFound) {
		return req, nil, invalid(message.FieldError{Field: "template.key", Message: "names no template of this tenant (or an archived one)"})
	}
	if err != nil {
		return req, nil, fmt.Errorf("load template %s: %w", ref.Key, err)
	}
	switch {
	case req.Channel == "":
		req.Channel = e.tpl.Channel
	case req.Channel != e.tpl.Channel:
		return req, nil, invalid(message.FieldError{Field: "channel", Message: fmt.Sprintf("is %s, but template %s is an %s template", req.Channel, ref.Key, e.tpl.Channel)})
	}
	v, err := s.version(ctx, tenantID, e, ref.Version, loc, "template.")
	if err != nil {
		return req, nil, err
	}
	out, err := s.renderWith(e, v, ref.Data, to, "template.data")
	if err != nil {
		return req, nil, err
	}
	req.Template = nil
	place(&req, out)
	if req.Category == "" {
		req.Category = e.tpl.Category
	}
	return req, &message.TemplateUse{Key: ref.Key, Version: v.Version, Locale: v.Locale}, nil
}

// place puts what a version rendered where the request's channel carries it: subject, text and
// html for email and SMS; for push and in_app, the subject is the title and the text the body,
// beside the rest of the request's push or in_app content (data, image, action_url…).
func place(req *message.Request, out Rendered) {
	switch req.Channel {
	case message.Push:
		var c message.PushContent
		if req.Push != nil {
			c = *req.Push // a copy: the caller's request (a batch's shared defaults) stays as it was
		}
		c.Title, c.Body = out.Subject, out.Text
		req.Push = &c
	case message.InApp:
		var c message.InAppContent
		if req.InApp != nil {
			c = *req.InApp
		}
		c.Title, c.Body = out.Subject, out.Text
		req.InApp = &c
	default:
		req.Subject, req.Text, req.HTML = out.Subject, out.Text, out.HTML
	}
}

// version picks what renders: version n when pinned, else the active version of the first of
// loc's fallbacks that has one.
func (s *Service) version(ctx context.Context, tenantID string, e *active, n int, loc, prefix string) (*compiled, error) {
	if n > 0 {
		v, err := s.store.GetTemplateVersion(ctx, tenantID, e.tpl.Key, n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid(message.FieldError{Field: prefix + "version", Message: fmt.Sprintf("template %s has no version %d", e.tpl.Key, n)})
		}
		if err != nil {
			return nil, err
		}
		c, faults := compile(v, e.tpl.Channel, e.schema, false)
		if len(faults) > 0 {
			return nil, fmt.Errorf("version %d of template %s does not compile: %s", n, e.tpl.Key, faults[0].Message)
		}
		return c, nil
	}
	tried := fallbacks(loc, e.tpl.DefaultLocale)
	for _, l := range tried {
		if c, ok := e.byLocale[l]; ok {
			return c, nil
		}
	}
	return nil, invalid(message.FieldError{Field: prefix + "locale", Message: fmt.Sprintf("template %s has no active version for %s; activate one with POST /v1/templates/%s/versions/{n}/activate",
		e.tpl.Key, strings.Join(tried, ", "), e.tpl.Key)})
}

// renderWith checks data against the template's schema and renders v with it, and with to (when
// not nil) as recipient.
func (s *Service) renderWith(e *active, v *compiled, data map[string]any, to *domain.Recipient, dataField string) (Rendered, error) {
	if dataSize(data, MaxDataBytes) > MaxDataBytes {
		return Rendered{}, invalid(message.FieldError{Field: dataField, Message: fmt.Sprintf("is larger than %d bytes; a template's data holds what one message shows", MaxDataBytes)})
	}
	if faults := e.schema.Validate(dataField, data); len(faults) > 0 {
		return Rendered{}, invalid(faults...)
	}
	out, err := v.render(withRecipient(data, to))
	if errors.Is(err, ErrTooLarge) {
		return Rendered{}, invalid(message.FieldError{Field: dataField, Message: fmt.Sprintf(
			"version %d renders beyond the limits (%d loop iterations, %d bytes) with this data", v.Version, MaxIterations, MaxOutputBytes)})
	}
	if err != nil {
		return Rendered{}, invalid(message.FieldError{Field: dataField, Message: fmt.Sprintf("version %d cannot render with this data: %s", v.Version, oneLine(err.Error()))})
	}
	return out, nil
}

// dataSize is about how many bytes data takes (strings and keys by their length, other values
// by 8), counted no further than past limit.
func dataSize(v any, limit int) int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case string:
			n += len(x)
		case map[string]any:
			for k, e := range x {
				n += len(k)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		default:
			n += 8
		}
	}
	walk(v)
	return n
}

// PreviewInput asks what a version renders to.
type PreviewInput struct {
	Locale  string         `json:"locale,omitempty"`
	Version int            `json:"version,omitempty"`
	Data    map[string]any `json:"data,omitempty"`
}

// Preview is a rendered version, for approval before activating it.
type Preview struct {
	Version int              `json:"version"`
	Locale  string           `json:"locale"`
	Subject string           `json:"subject,omitempty"`
	Text    string           `json:"text,omitempty"`
	HTML    string           `json:"html,omitempty"`
	SMS     *message.SMSSize `json:"sms,omitempty"`
}

// Preview renders a version (pinned, or the locale's active one) with data without sending
// anything. Errors name each bad field: data.code, locale, version.
func (s *Service) Preview(ctx context.Context, tenantID, key string, in PreviewInput) (Preview, error) {
	loc := ""
	if in.Locale != "" {
		var err error
		if loc, err = CanonicalLocale(in.Locale); err != nil {
			return Preview{}, invalid(message.FieldError{Field: "locale", Message: err.Error()})
		}
	}
	e, err := s.cache.get(ctx, s.store, tenantID, key)
	if err != nil {
		return Preview{}, err
	}
	v, err := s.version(ctx, tenantID, e, in.Version, loc, "")
	if err != nil {
		return Preview{}, err
	}
	out, err := s.renderWith(e, v, in.Data, nil, "data")
	if err != nil {
		return Preview{}, err
	}
	p := Preview{Version: v.Version, Locale: v.Locale, Subject: out.Subject, Text: out.Text, HTML: out.HTML}
	if e.tpl.Channel == message.SMS {
		sz := message.MeasureSMS(out.Text)
		p.SMS = &sz
	}
	return p, nil
}

// withRecipient is data with to's profile as recipient: {{recipient.id}}, email, phone, locale,
// timezone, and data.* (the profile's own data). Data that holds a recipient of its own keeps it.
func withRecipient(data map[string]any, to *domain.Recipient) map[string]any {
	if to == nil {
		return data
	}
	if _, own := data["recipient"]; own {
		return data
	}
	var profileData map[string]any
	_ = json.Unmarshal(to.Data, &profileData) // a profile's data is a JSON object (recipients.check)
	out := make(map[string]any, len(data)+1)
	maps.Copy(out, data)
	out["recipient"] = map[string]any{"id": to.ExternalID, "email": to.Email, "phone": to.Phone, "locale": to.Locale,
		"timezone": to.Timezone, "data": profileData}
	return out
}
