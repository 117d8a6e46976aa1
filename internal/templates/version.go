package templates

import (
	"fmt"
	"strings"

	"github.com/mailgun/raymond/v2/parser"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// compiled is a version ready to render.
type compiled struct {
	domain.TemplateVersion
	subject, text, html *Part
}

// Rendered is what a version renders to.
type Rendered struct {
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// compile parses each part of v. With check, it also holds every part to the schema and the
// channel's rules, naming each fault by field and line; stored versions passed that check.
func compile(v domain.TemplateVersion, ch message.Channel, schema *Schema, check bool) (*compiled, []message.FieldError) {
	var faults []message.FieldError
	add := func(field, msg string) { faults = append(faults, message.FieldError{Field: field, Message: msg}) }
	if check {
		switch ch {
		case message.SMS:
			if v.Subject != "" {
				add("subject", "is not allowed for an sms template")
			}
			if v.HTML != "" {
				add("html", "is not allowed for an sms template")
			}
			if v.Text == "" {
				add("text", "is required for an sms template")
			}
		case message.Email:
			if strings.TrimSpace(v.Subject) == "" {
				add("subject", "is required for an email template")
			}
			if v.Text == "" && v.HTML == "" {
				add("text", "text or html is required for an email template")
			}
		case message.Push, message.InApp:
			// subject renders the title and text the body (docs/api.md#templates).
			if v.HTML != "" {
				add("html", fmt.Sprintf("is not allowed for a %s template: subject is the title and text the body", ch))
			}
			if strings.TrimSpace(v.Subject) == "" && strings.TrimSpace(v.Text) == "" {
				add("text", fmt.Sprintf("subject (the title) or text (the body) is required for a %s template", ch))
			}
		}
	}
	c := &compiled{TemplateVersion: v}
	for _, p := range []struct {
		field, source string
		html          bool
		dst           **Part
	}{{"subject", v.Subject, false, &c.subject}, {"text", v.Text, false, &c.text}, {"html", v.HTML, true, &c.html}} {
		if p.source == "" {
			continue
		}
		if check {
			if len(p.source) > MaxOutputBytes {
				add(p.field, "is too long for a template")
				continue
			}
			prog, err := parser.Parse(p.source)
			if err != nil {
				add(p.field, oneLine(err.Error()))
				continue
			}
			vf := checkVariables(prog, schema.doc)
			for _, f := range vf {
				add(p.field, f.String())
			}
			if len(vf) > 0 {
				continue // compiling would report the same faults again
			}
		}
		part, err := CompilePart(p.source, p.html)
		if err != nil {
			add(p.field, oneLine(err.Error()))
			continue
		}
		*p.dst = part
	}
	return c, faults
}

// render renders every part of c with data.
func (c *compiled) render(data map[string]any) (Rendered, error) {
	var out Rendered
	for _, p := range []struct {
		part *Part
		dst  *string
	}{{c.subject, &out.Subject}, {c.text, &out.Text}, {c.html, &out.HTML}} {
		if p.part == nil {
			continue
		}
		s, err := p.part.Render(data)
		if err != nil {
			return Rendered{}, err
		}
		*p.dst = s
	}
	return out, nil
}
