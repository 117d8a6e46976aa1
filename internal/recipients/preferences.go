package recipients

import (
	"context"
	"fmt"
	"strings"

	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/pkg/message"
)

// Channels are the channels a person has preferences on.
var Channels = []message.Channel{message.Email, message.SMS}

// WithCategories has s drop c's entries when a category changes.
func (s *Service) WithCategories(c *categories.Cache) *Service {
	s.cats = c
	return s
}

func (s *Service) changed(ctx context.Context, tenantID string) {
	if s.cats != nil {
		s.cats.Changed(ctx, tenantID)
	}
}

// checkCategory validates a category's fields, naming each bad one.
func checkCategory(name, description *string, kind *message.Category, defaultIn, required *bool) []message.FieldError {
	var bad []message.FieldError
	add := func(f, m string) { bad = append(bad, message.FieldError{Field: f, Message: m}) }
	if name != nil && (strings.TrimSpace(*name) == "" || len(*name) > 100) {
		add("name", "is required, at most 100 bytes")
	}
	if description != nil && len(*description) > 500 {
		add("description", "is at most 500 bytes")
	}
	if kind != nil && *kind != message.Transactional && *kind != message.Marketing {
		add("kind", `must be "transactional" or "marketing"`)
	}
	if required != nil && *required && defaultIn != nil && !*defaultIn {
		add("default", `must be "in" for a required category: nobody can be out of it`)
	}
	return bad
}

// CreateCategory declares a category for tenantID's messages. Errors: *message.ValidationError,
// store.ErrCategoryTaken.
func (s *Service) CreateCategory(ctx context.Context, tenantID string, c domain.Category) (domain.Category, error) {
	if c.Kind == "" {
		c.Kind = message.Transactional
	}
	bad := checkCategory(&c.Name, &c.Description, &c.Kind, &c.DefaultIn, &c.Required)
	if msg := message.CheckCategoryKey(c.Key); msg != "" {
		bad = append([]message.FieldError{{Field: "key", Message: msg}}, bad...)
	} else if message.Category(c.Key).BuiltIn() {
		bad = append([]message.FieldError{{Field: "key", Message: "is a built-in category"}}, bad...)
	}
	if len(bad) > 0 {
		return domain.Category{}, &message.ValidationError{Fields: bad}
	}
	out, err := s.store.CreateCategory(ctx, tenantID, c)
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return out, err
}

// Categories lists tenantID's categories by key.
func (s *Service) Categories(ctx context.Context, tenantID string) ([]domain.Category, error) {
	return s.store.ListCategories(ctx, tenantID)
}

// Category returns one of tenantID's categories. Errors: store.ErrNotFound.
func (s *Service) Category(ctx context.Context, tenantID, key string) (domain.Category, error) {
	return s.store.GetCategory(ctx, tenantID, key)
}

// UpdateCategory changes one of tenantID's categories. Errors: *message.ValidationError,
// store.ErrNotFound.
func (s *Service) UpdateCategory(ctx context.Context, tenantID, key string, p domain.CategoryPatch) (domain.Category, error) {
	cur, err := s.store.GetCategory(ctx, tenantID, key)
	if err != nil {
		return domain.Category{}, err
	}
	defaultIn, required := cur.DefaultIn, cur.Required
	if p.DefaultIn != nil {
		defaultIn = *p.DefaultIn
	}
	if p.Required != nil {
		required = *p.Required
	}
	if bad := checkCategory(p.Name, p.Description, p.Kind, &defaultIn, &required); len(bad) > 0 {
		return domain.Category{}, &message.ValidationError{Fields: bad}
	}
	out, err := s.store.UpdateCategory(ctx, tenantID, key, p)
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return out, err
}

// DeleteCategory removes one of tenantID's categories and everyone's choices for it; messages
// naming it are refused from then on. Errors: store.ErrNotFound.
func (s *Service) DeleteCategory(ctx context.Context, tenantID, key string) error {
	err := s.store.DeleteCategory(ctx, tenantID, key)
	if err == nil {
		s.changed(ctx, tenantID)
	}
	return err
}

// Choices are a person's preferences as they stand: every category of the tenant on every
// channel the person can be reached on, with Chosen saying which they set themselves.
type Choices struct {
	Categories map[string]map[message.Channel]bool
	Chosen     domain.Preferences
}

// Preferences returns who's preferences: their choices over each category's default (a
// required category is always in).
func (s *Service) Preferences(ctx context.Context, tenantID string, who domain.PreferenceSubject) (Choices, error) {
	cats, err := s.store.ListCategories(ctx, tenantID)
	if err != nil {
		return Choices{}, err
	}
	chosen, err := s.store.GetPreferences(ctx, tenantID, who)
	if err != nil {
		return Choices{}, err
	}
	return effective(cats, chosen, who), nil
}

func effective(cats []domain.Category, chosen domain.Preferences, who domain.PreferenceSubject) Choices {
	out := Choices{Categories: map[string]map[message.Channel]bool{}, Chosen: chosen}
	for _, c := range cats {
		byCh := map[message.Channel]bool{}
		for _, ch := range channelsOf(who) {
			in, set := chosen[c.Key][ch]
			byCh[ch] = c.Required || (set && in) || (!set && c.DefaultIn)
		}
		out.Categories[c.Key] = byCh
	}
	return out
}

// channelsOf is where who can be reached: a profile on every channel, an address on its own.
func channelsOf(who domain.PreferenceSubject) []message.Channel {
	if who.RecipientID != "" {
		return Channels
	}
	return []message.Channel{who.Channel}
}

// SetPreferences makes p who's choices (a channel p leaves out of a category goes back to the
// category's default) and returns their preferences after. Errors: *message.ValidationError
// naming categories.<key> or categories.<key>.<channel>; nothing changes then.
func (s *Service) SetPreferences(ctx context.Context, tenantID string, who domain.PreferenceSubject, p domain.Preferences) (Choices, error) {
	cats, err := s.store.ListCategories(ctx, tenantID)
	if err != nil {
		return Choices{}, err
	}
	byKey := map[string]domain.Category{}
	for _, c := range cats {
		byKey[c.Key] = c
	}
	var bad []message.FieldError
	allowed := channelsOf(who)
	for key, byCh := range p {
		c, ok := byKey[key]
		if !ok {
			bad = append(bad, message.FieldError{Field: "categories." + key, Message: "names no category of this tenant (GET /v1/categories)"})
			continue
		}
		for ch, in := range byCh {
			field := fmt.Sprintf("categories.%s.%s", key, ch)
			switch {
			case !contains(allowed, ch):
				bad = append(bad, message.FieldError{Field: field, Message: fmt.Sprintf("must be one of %v for this person", allowed)})
			case c.Required && !in:
				bad = append(bad, message.FieldError{Field: field, Message: "is a required category: nobody can opt out of it"})
			}
		}
	}
	if len(bad) > 0 {
		return Choices{}, &message.ValidationError{Fields: bad}
	}
	chosen, err := s.store.ReplacePreferences(ctx, tenantID, who, p)
	if err != nil {
		return Choices{}, err
	}
	return effective(cats, chosen, who), nil
}

func contains(list []message.Channel, ch message.Channel) bool {
	for _, c := range list {
		if c == ch {
			return true
		}
	}
	return false
}
