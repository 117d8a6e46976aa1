package intake

import (
	"context"
	"errors"
	"fmt"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// profiles looks up the recipient profiles reqs name, in one round trip.
func (s *Service) profiles(ctx context.Context, tenantID string, reqs []message.Request) (map[string]domain.Recipient, error) {
	var names []string
	for _, r := range reqs {
		if r.Recipient != "" && message.CheckRecipientID(r.Recipient) == "" {
			names = append(names, r.Recipient)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	return s.store.GetRecipients(ctx, tenantID, names)
}

// prepareFor is prepare for a request that may name a recipient profile, among those found.
func (s *Service) prepareFor(ctx context.Context, tenantID string, req message.Request, found map[string]domain.Recipient) (message.Request, *message.TemplateUse, error) {
	if req.Recipient == "" {
		return s.prepare(ctx, tenantID, req, nil)
	}
	if msg := message.CheckRecipientID(req.Recipient); msg != "" {
		return req, nil, &message.ValidationError{Fields: []message.FieldError{{Field: "recipient", Message: msg}}}
	}
	to, ok := found[req.Recipient]
	if !ok {
		return req, nil, &message.ValidationError{Fields: []message.FieldError{{Field: "recipient",
			Message: fmt.Sprintf("names no recipient profile of this tenant; create it with PUT /v1/recipients/%s", req.Recipient)}}}
	}
	return s.prepare(ctx, tenantID, req, &to)
}

// prepare validates req, rendering it first when it names a template, and spells out the default
// category (a key repeated with and without "category":"transactional" names the same message).
// With a recipient profile to, the address comes from it unless req has one, and its locale is
// the template's when req names none.
func (s *Service) prepare(ctx context.Context, tenantID string, req message.Request, to *domain.Recipient) (message.Request, *message.TemplateUse, error) {
	var use *message.TemplateUse
	if req.Template != nil {
		if s.templates == nil {
			return req, nil, &message.ValidationError{Fields: []message.FieldError{{Field: "template", Message: "template sends are not enabled on this server"}}}
		}
		if to != nil && req.Template.Locale == "" && to.Locale != "" {
			ref := *req.Template
			ref.Locale = to.Locale
			req.Template = &ref
		}
		var err error
		if req, use, err = s.templates.Render(ctx, tenantID, req, to); err != nil {
			return req, nil, err
		}
		if err := addressOf(&req, to); err != nil {
			return req, nil, err
		}
		if err := req.Validate(); err != nil {
			return req, nil, renderedFaults(err)
		}
	} else {
		if err := addressOf(&req, to); err != nil {
			return req, nil, err
		}
		if err := req.Validate(); err != nil {
			return req, nil, err
		}
	}
	if req.Category == "" {
		req.Category = message.Transactional
	}
	return req, use, nil
}

// addressOf gives req the address of its recipient profile to for its channel, unless it has one.
// An in_app or push message's address is the profile's id: its inbox, or its devices.
func addressOf(req *message.Request, to *domain.Recipient) error {
	if req.Channel == message.InApp || req.Channel == message.Push {
		if req.To != "" {
			return &message.ValidationError{Fields: []message.FieldError{{Field: "to",
				Message: fmt.Sprintf("is not allowed for %s: name the recipient whose %s it goes to", req.Channel, map[message.Channel]string{message.InApp: "inbox", message.Push: "devices"}[req.Channel])}}}
		}
		if to != nil {
			req.To = to.ExternalID
		}
		return nil
	}
	if to == nil || req.To != "" {
		return nil
	}
	field, addr := "", ""
	switch req.Channel {
	case message.Email:
		field, addr = "email", to.Email
	case message.SMS:
		field, addr = "phone", to.Phone
	default:
		return nil // Validate names the channel
	}
	if addr == "" {
		return &message.ValidationError{Fields: []message.FieldError{{Field: "recipient." + field,
			Message: fmt.Sprintf("is empty in recipient %s's profile: set it (PATCH /v1/recipients/%s) or give to", to.ExternalID, to.ExternalID)}}}
	}
	req.To = addr
	return nil
}

// renderedFaults names the faults of a rendered body after the template: the request itself had
// no subject, text or html.
func renderedFaults(err error) error {
	var verr *message.ValidationError
	if !errors.As(err, &verr) {
		return err
	}
	out := &message.ValidationError{}
	for _, f := range verr.Fields {
		switch f.Field {
		case "subject", "text", "html", "push.title", "push.body", "in_app.title", "in_app.body":
			f = message.FieldError{Field: "template", Message: "the rendered " + f.Field + " " + f.Message}
		}
		out.Fields = append(out.Fields, f)
	}
	return out
}

// admit holds a prepared req to its tenant's policies: its category must be one the tenant has,
// and its own from one of the senders its provider configs may use. It returns what decides, as
// req is recorded, whether its recipient wants it (nil: nothing to check).
func (s *Service) admit(ctx context.Context, tenantID string, req message.Request) (*store.PreferenceCheck, error) {
	kind, pref, err := s.category(ctx, tenantID, req.Category)
	if err != nil {
		return nil, err
	}
	if req.From == "" || s.senders == nil {
		return pref, nil
	}
	ok, err := s.senders.Allows(ctx, tenantID, req.Channel, kind, req.From)
	switch {
	case err != nil:
		return nil, fmt.Errorf("check from: %w", err)
	case !ok && req.Channel == message.Email:
		return nil, &message.ValidationError{Fields: []message.FieldError{{Field: "from",
			Message: "is on a domain none of this tenant's email provider configs may send from: use the domain of a config's sender.from, or add it to a config's sender.domains"}}}
	case !ok:
		return nil, &message.ValidationError{Fields: []message.FieldError{{Field: "from",
			Message: fmt.Sprintf("is not a sender of this tenant's %s provider configs: use a config's sender.from, or add it to a config's sender.senders", req.Channel)}}}
	}
	return pref, nil
}

// category is the kind (transactional or marketing) of a message in category c, and what
// decides whether its recipient wants it: nothing for the built-in categories and the tenant's
// required ones, else the category's key and default. A category the tenant has not declared
// is refused, naming category.
func (s *Service) category(ctx context.Context, tenantID string, c message.Category) (message.Category, *store.PreferenceCheck, error) {
	if c.BuiltIn() {
		return c, nil, nil
	}
	unknown := &message.ValidationError{Fields: []message.FieldError{{Field: "category",
		Message: "names no category of this tenant: declare it with POST /v1/categories, or use transactional or marketing"}}}
	if s.cats == nil {
		return "", nil, unknown
	}
	cats, err := s.cats.Get(ctx, tenantID)
	if err != nil {
		return "", nil, fmt.Errorf("read categories: %w", err)
	}
	cat, ok := cats[string(c)]
	switch {
	case !ok:
		return "", nil, unknown
	case cat.Required:
		return cat.Kind, nil, nil
	}
	return cat.Kind, &store.PreferenceCheck{Category: cat.Key, DefaultIn: cat.DefaultIn}, nil
}
