package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// Category is a tenant's category as the API shows it.
type Category struct {
	Key         string           `json:"key"`
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Kind        message.Category `json:"kind"`
	Default     string           `json:"default"` // in or out
	Required    bool             `json:"required"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

// CategoryView is c as the API shows it.
func CategoryView(c domain.Category) Category {
	def := "out"
	if c.DefaultIn {
		def = "in"
	}
	return Category{Key: c.Key, Name: c.Name, Description: c.Description, Kind: c.Kind, Default: def, Required: c.Required,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// CategoryInput is the body of POST /v1/categories (key, name and default required) and of PATCH
// /v1/categories/{key} (the fields named change; key cannot).
type CategoryInput struct {
	Key         *string           `json:"key"`
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Kind        *message.Category `json:"kind"`
	Default     *string           `json:"default"`
	Required    *bool             `json:"required"`
}

// defaultIn reads default: nil when absent, or a field error.
func (in CategoryInput) defaultIn() (*bool, []message.FieldError) {
	if in.Default == nil {
		return nil, nil
	}
	switch *in.Default {
	case "in", "out":
		v := *in.Default == "in"
		return &v, nil
	}
	return nil, []message.FieldError{{Field: "default", Message: `must be "in" or "out"`}}
}

func (s *Server) createCategory(w http.ResponseWriter, r *http.Request) {
	var in CategoryInput
	if prob := decodeJSON(r, 8<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	def, bad := in.defaultIn()
	for _, f := range []struct {
		name string
		set  bool
	}{{"key", in.Key != nil}, {"name", in.Name != nil}, {"default", in.Default != nil}} {
		if !f.set {
			bad = append(bad, message.FieldError{Field: f.name, Message: "is required"})
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	c := domain.Category{Key: *in.Key, Name: *in.Name, DefaultIn: *def}
	if in.Description != nil {
		c.Description = *in.Description
	}
	if in.Kind != nil {
		c.Kind = *in.Kind
	}
	if in.Required != nil {
		c.Required = *in.Required
	}
	out, err := s.Recipients.CreateCategory(r.Context(), principalFrom(r.Context()).TenantID, c)
	if err == nil {
		w.Header().Set("Location", "/v1/categories/"+out.Key)
	}
	s.answer(w, r, http.StatusCreated, CategoryView(out), err, "the category store (nothing changed)", func(err error) *Problem {
		if errors.Is(err, store.ErrCategoryTaken) {
			return fieldProblem(http.StatusConflict, "name-taken", "Category key taken", message.FieldError{Field: "key", Message: "is already used by another category of this tenant"})
		}
		return nil
	})
}

func (s *Server) listCategories(w http.ResponseWriter, r *http.Request) {
	list, err := s.Recipients.Categories(r.Context(), principalFrom(r.Context()).TenantID)
	writePage(s, w, r, "categories", Views(list, CategoryView), "", err) // a tenant has a few: one page
}

func (s *Server) getCategory(w http.ResponseWriter, r *http.Request) {
	c, err := s.Recipients.Category(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"))
	s.answer(w, r, http.StatusOK, CategoryView(c), err, "the category store", nil)
}

func (s *Server) updateCategory(w http.ResponseWriter, r *http.Request) {
	var in CategoryInput
	if prob := decodeJSON(r, 8<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	def, bad := in.defaultIn()
	if in.Key != nil && *in.Key != r.PathValue("key") {
		bad = append(bad, message.FieldError{Field: "key", Message: "cannot change: create a new category and delete this one"})
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", bad...))
		return
	}
	c, err := s.Recipients.UpdateCategory(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"), domain.CategoryPatch{
		Name: in.Name, Description: in.Description, Kind: in.Kind, DefaultIn: def, Required: in.Required})
	s.answer(w, r, http.StatusOK, CategoryView(c), err, "the category store (nothing changed)", nil)
}

func (s *Server) deleteCategory(w http.ResponseWriter, r *http.Request) {
	err := s.Recipients.DeleteCategory(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"))
	s.answer(w, r, http.StatusNoContent, nil, err, "the category store (nothing changed)", nil)
}

// Preferences are a person's preferences as the API shows and takes them: in (true) or out per
// category and channel. Shown, Categories holds every category on every channel the person has
// (their choice, else the category's default; a required category is always in) and Chosen only
// what they chose.
type Preferences struct {
	Categories map[string]map[message.Channel]bool `json:"categories"`
	Chosen     map[string]map[message.Channel]bool `json:"chosen,omitempty"`
}

// PreferencesView is c as the API shows it.
func PreferencesView(c recipients.Choices) Preferences {
	chosen := map[string]map[message.Channel]bool(c.Chosen)
	if chosen == nil {
		chosen = map[string]map[message.Channel]bool{}
	}
	return Preferences{Categories: c.Categories, Chosen: chosen}
}

// preferenceSubject is whose preferences a request names: the profile of its path, or the
// address of its query; false after answering a problem.
func (s *Server) preferenceSubject(w http.ResponseWriter, r *http.Request) (domain.PreferenceSubject, bool) {
	if r.PathValue("id") != "" {
		id, ok := recipientID(w, r)
		if !ok {
			return domain.PreferenceSubject{}, false
		}
		// preferences belong to a profile that exists
		_, err := s.Recipients.Profile(r.Context(), principalFrom(r.Context()).TenantID, id)
		if err != nil {
			s.answer(w, r, 0, nil, err, "the recipient store", nil)
			return domain.PreferenceSubject{}, false
		}
		return domain.PreferenceSubject{RecipientID: id}, true
	}
	q := r.URL.Query()
	addr := q.Get("address")
	bad := []message.FieldError{}
	for name := range q {
		if name != "address" {
			bad = append(bad, message.FieldError{Field: name, Message: "is not a parameter of this call"})
		}
	}
	if addr == "" {
		bad = append(bad, message.FieldError{Field: "address", Message: "is required: an email address or an E.164 phone number"})
	} else {
		bad = append(bad, checkSuppressionTarget(recipients.AddressChannel(addr), addr)...)
		for i := range bad {
			if bad[i].Field == "recipient" {
				bad[i].Field = "address"
			}
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return domain.PreferenceSubject{}, false
	}
	return domain.PreferenceSubject{Channel: recipients.AddressChannel(addr), Address: addr}, true
}

func (s *Server) getPreferences(w http.ResponseWriter, r *http.Request) {
	who, ok := s.preferenceSubject(w, r)
	if !ok {
		return
	}
	c, err := s.Recipients.Preferences(r.Context(), principalFrom(r.Context()).TenantID, who)
	s.answer(w, r, http.StatusOK, PreferencesView(c), err, "the preference store", nil)
}

func (s *Server) putPreferences(w http.ResponseWriter, r *http.Request) {
	who, ok := s.preferenceSubject(w, r)
	if !ok {
		return
	}
	var in Preferences
	if prob := decodeJSON(r, 64<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if in.Categories == nil {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "categories", Message: `is required: {"<category>": {"email": true, "sms": false}}`}))
		return
	}
	c, err := s.Recipients.SetPreferences(r.Context(), principalFrom(r.Context()).TenantID, who, domain.Preferences(in.Categories))
	s.answer(w, r, http.StatusOK, PreferencesView(c), err, "the preference store (nothing changed)", nil)
}
