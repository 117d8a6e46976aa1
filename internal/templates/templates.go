package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"golang.org/x/text/language"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Store is what the template service keeps in the database; *store.Store implements it.
type Store interface {
	CreateTemplate(ctx context.Context, tenantID string, t domain.Template) (domain.Template, error)
	GetTemplate(ctx context.Context, tenantID, key string) (domain.Template, error)
	ListTemplates(ctx context.Context, tenantID, after string, archived bool, limit int) ([]domain.Template, string, error)
	UpdateTemplate(ctx context.Context, tenantID, key string, p domain.TemplatePatch) (domain.Template, error)
	ArchiveTemplate(ctx context.Context, tenantID, key string) (int64, error)
	CreateTemplateVersion(ctx context.Context, tenantID, key string, v domain.TemplateVersion) (domain.TemplateVersion, error)
	GetTemplateVersion(ctx context.Context, tenantID, key string, n int) (domain.TemplateVersion, error)
	ListTemplateVersions(ctx context.Context, tenantID, key string, before, limit int) ([]domain.TemplateVersion, int, error)
	ActivateTemplateVersion(ctx context.Context, tenantID, key string, n int) (domain.Activation, error)
	GetCategory(ctx context.Context, tenantID, key string) (domain.Category, error)
	activeVersions
}

// checkCategory names what is wrong with a template's category: it is transactional,
// marketing, or one of the tenant's categories (its messages are then in it).
func (s *Service) checkCategory(ctx context.Context, tenantID string, c message.Category) (string, error) {
	if c.BuiltIn() {
		return "", nil
	}
	_, err := s.store.GetCategory(ctx, tenantID, string(c))
	if errors.Is(err, store.ErrNotFound) {
		return `must be "transactional", "marketing" or one of this tenant's categories (GET /v1/categories)`, nil
	}
	return "", err
}

// Service manages templates and renders messages from them.
type Service struct {
	store Store
	cache *Cache
	log   *slog.Logger
}

// New returns the service.
func New(s Store, cache *Cache, log *slog.Logger) *Service {
	return &Service{store: s, cache: cache, log: log}
}

// Get returns tenantID's template key, archived or not. Errors: store.ErrNotFound.
func (s *Service) Get(ctx context.Context, tenantID, key string) (domain.Template, error) {
	return s.store.GetTemplate(ctx, tenantID, key)
}

// List returns a page of tenantID's templates after the key cursor (archived ones when archived
// is set) and the next page's cursor. Errors: store.ErrBadCursor.
func (s *Service) List(ctx context.Context, tenantID, cursor string, archived bool, limit int) ([]domain.Template, string, error) {
	return s.store.ListTemplates(ctx, tenantID, cursor, archived, limit)
}

// GetVersion returns version n of a template. Errors: store.ErrNotFound.
func (s *Service) GetVersion(ctx context.Context, tenantID, key string, n int) (domain.TemplateVersion, error) {
	return s.store.GetTemplateVersion(ctx, tenantID, key, n)
}

// ListVersions returns a page of a template's versions, newest first, before version before (0:
// from the newest), and the next page's cursor (0: none). Errors: store.ErrNotFound when the
// template does not exist.
func (s *Service) ListVersions(ctx context.Context, tenantID, key string, before, limit int) ([]domain.TemplateVersion, int, error) {
	if _, err := s.store.GetTemplate(ctx, tenantID, key); err != nil {
		return nil, 0, err
	}
	return s.store.ListTemplateVersions(ctx, tenantID, key, before, limit)
}

// Input creates a template.
type Input struct {
	Key           string           `json:"key"`
	Name          string           `json:"name"`
	Channel       message.Channel  `json:"channel"`
	Category      message.Category `json:"category,omitempty"`
	DefaultLocale string           `json:"default_locale,omitempty"`
	Variables     json.RawMessage  `json:"variables,omitempty"`
}

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func invalid(fields ...message.FieldError) error { return &message.ValidationError{Fields: fields} }

// Create validates and stores a template. Errors: *message.ValidationError, store.ErrKeyTaken.
func (s *Service) Create(ctx context.Context, tenantID string, in Input) (domain.Template, error) {
	var faults []message.FieldError
	add := func(field, msg string) { faults = append(faults, message.FieldError{Field: field, Message: msg}) }
	if !keyPattern.MatchString(in.Key) {
		add("key", "must be 1-64 lowercase letters, digits, - or _, starting with a letter or digit")
	}
	if in.Name = strings.TrimSpace(in.Name); in.Name == "" || len(in.Name) > 200 {
		add("name", "is required, at most 200 bytes")
	}
	if !in.Channel.Valid() && in.Channel != message.Push && in.Channel != message.InApp {
		add("channel", `must be "sms", "email", "push" or "in_app"`)
	}
	if in.Category == "" {
		in.Category = message.Transactional
	} else if msg, err := s.checkCategory(ctx, tenantID, in.Category); err != nil {
		return domain.Template{}, err
	} else if msg != "" {
		add("category", msg)
	}
	if in.DefaultLocale == "" {
		in.DefaultLocale = "en"
	} else if loc, err := CanonicalLocale(in.DefaultLocale); err != nil {
		add("default_locale", err.Error())
	} else {
		in.DefaultLocale = loc
	}
	if schema, err := ParseSchema(in.Variables); err != nil {
		add("variables", err.Error())
	} else {
		in.Variables, _ = json.Marshal(schema.doc)
	}
	if len(faults) > 0 {
		return domain.Template{}, invalid(faults...)
	}
	return s.store.CreateTemplate(ctx, tenantID, domain.Template{Key: in.Key, Name: in.Name, Channel: in.Channel,
		Category: in.Category, DefaultLocale: in.DefaultLocale, Variables: in.Variables})
}

// Update applies p. Errors: *message.ValidationError, store.ErrNotFound.
func (s *Service) Update(ctx context.Context, tenantID, key string, p domain.TemplatePatch) (domain.Template, error) {
	var faults []message.FieldError
	if p.Name != nil {
		if *p.Name = strings.TrimSpace(*p.Name); *p.Name == "" || len(*p.Name) > 200 {
			faults = append(faults, message.FieldError{Field: "name", Message: "must be 1-200 bytes"})
		}
	}
	if p.Category != nil {
		if msg, err := s.checkCategory(ctx, tenantID, *p.Category); err != nil {
			return domain.Template{}, err
		} else if msg != "" {
			faults = append(faults, message.FieldError{Field: "category", Message: msg})
		}
	}
	if p.DefaultLocale != nil {
		loc, err := CanonicalLocale(*p.DefaultLocale)
		if err != nil {
			faults = append(faults, message.FieldError{Field: "default_locale", Message: err.Error()})
		}
		p.DefaultLocale = &loc
	}
	if len(p.Variables) > 0 {
		if _, err := ParseSchema(p.Variables); err != nil {
			faults = append(faults, message.FieldError{Field: "variables", Message: err.Error()})
		}
	}
	if len(faults) > 0 {
		return domain.Template{}, invalid(faults...)
	}
	t, err := s.store.UpdateTemplate(ctx, tenantID, key, p)
	if err == nil {
		s.cache.changed(ctx, tenantID, key, t.Revision)
		s.log.InfoContext(ctx, "template updated", "tenant_id", tenantID, "template", key)
	}
	return t, err
}

// Archive stops a template's sends; its versions and messages stay readable.
func (s *Service) Archive(ctx context.Context, tenantID, key string) error {
	rev, err := s.store.ArchiveTemplate(ctx, tenantID, key)
	if err == nil {
		s.cache.changed(ctx, tenantID, key, rev)
		s.log.InfoContext(ctx, "template archived", "tenant_id", tenantID, "template", key)
	}
	return err
}

// VersionInput creates a version.
type VersionInput struct {
	Locale  string `json:"locale,omitempty"`
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// CreateVersion checks in against the template's schema and channel and stores it as the next
// version (not yet active). Errors: *message.ValidationError (a syntax error or an undeclared
// variable names its field and line), store.ErrNotFound.
func (s *Service) CreateVersion(ctx context.Context, tenantID, key string, in VersionInput) (domain.TemplateVersion, error) {
	tpl, err := s.store.GetTemplate(ctx, tenantID, key)
	if err != nil {
		return domain.TemplateVersion{}, err
	}
	if tpl.Archived {
		return domain.TemplateVersion{}, store.ErrNotFound
	}
	schema, err := ParseSchema(tpl.Variables)
	if err != nil {
		return domain.TemplateVersion{}, fmt.Errorf("template %s's stored schema: %w", key, err)
	}
	var faults []message.FieldError
	loc := tpl.DefaultLocale
	if in.Locale != "" {
		if loc, err = CanonicalLocale(in.Locale); err != nil {
			faults = append(faults, message.FieldError{Field: "locale", Message: err.Error()})
		}
	}
	v := domain.TemplateVersion{Locale: loc, Subject: in.Subject, Text: in.Text, HTML: in.HTML}
	_, more := compile(v, tpl.Channel, schema, true)
	if faults = append(faults, more...); len(faults) > 0 {
		return domain.TemplateVersion{}, invalid(faults...)
	}
	return s.store.CreateTemplateVersion(ctx, tenantID, key, v)
}

// Activate makes version n the one its locale sends, for every API process at once (through the
// cache's notice).
func (s *Service) Activate(ctx context.Context, tenantID, key string, n int) (domain.TemplateVersion, error) {
	a, err := s.store.ActivateTemplateVersion(ctx, tenantID, key, n)
	if err != nil {
		return domain.TemplateVersion{}, err
	}
	s.cache.changed(ctx, tenantID, key, a.Revision)
	s.log.InfoContext(ctx, "template version activated", "tenant_id", tenantID, "template", key,
		"locale", a.Locale, "version", a.Version, "replaced_version", a.Replaced)
	return a.TemplateVersion, nil
}

// CanonicalLocale checks a BCP 47 tag and returns its canonical form (fr_ca → fr-CA).
func CanonicalLocale(s string) (string, error) {
	if len(s) > 35 {
		return "", errors.New("must be a BCP 47 language tag such as fr or fr-CA")
	}
	tag, err := language.Parse(strings.ReplaceAll(s, "_", "-"))
	if err != nil {
		return "", errors.New("must be a BCP 47 language tag such as fr or fr-CA")
	}
	return tag.String(), nil
}

// fallbacks lists the locales tried for loc, most specific first: fr-CA, fr, then def.
func fallbacks(loc, def string) []string {
	var out []string
	for loc != "" {
		out = append(out, loc)
		i := strings.LastIndexByte(loc, '-')
		if i < 0 {
			break
		}
		loc = loc[:i]
	}
	return append(out, def)
}
