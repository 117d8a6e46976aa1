package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/pkg/message"
)

// Recipient is a profile as the API shows it.
type Recipient struct {
	ID        string          `json:"id"`
	Email     string          `json:"email,omitempty"`
	Phone     string          `json:"phone,omitempty"`
	Locale    string          `json:"locale,omitempty"`
	Timezone  string          `json:"timezone,omitempty"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// RecipientView is x as the API shows it.
func RecipientView(x domain.Recipient) Recipient {
	return Recipient{ID: x.ExternalID, Email: x.Email, Phone: x.Phone, Locale: x.Locale, Timezone: x.Timezone,
		Data: x.Data, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt}
}

// RecipientInput is the body of PUT /v1/recipients/{id} (every field; absent ones are empty)
// and of PATCH (absent fields are left alone, "" clears one, data replaces the whole object).
type RecipientInput struct {
	Email    *string         `json:"email"`
	Phone    *string         `json:"phone"`
	Locale   *string         `json:"locale"`
	Timezone *string         `json:"timezone"`
	Data     json.RawMessage `json:"data"`
}

func (in RecipientInput) data() []byte {
	if len(in.Data) == 0 || string(in.Data) == "null" {
		return nil
	}
	return in.Data
}

// recipientID is the path's id, or a 400 naming it.
func recipientID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if msg := recipients.ValidID(id); msg != "" {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid path", message.FieldError{Field: "id", Message: msg}))
		return "", false
	}
	return id, true
}

// putRecipient creates (201) or replaces (200) a profile.
func (s *Server) putRecipient(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	var in RecipientInput
	if prob := decodeJSON(r, recipients.MaxDataBytes+4<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	x, created, err := s.Recipients.Put(r.Context(), principalFrom(r.Context()).TenantID, domain.Recipient{ExternalID: id,
		Email: str(in.Email), Phone: str(in.Phone), Locale: str(in.Locale), Timezone: str(in.Timezone), Data: in.data()})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.answer(w, r, status, RecipientView(x), err, "the recipient store (nothing changed)", nil)
}

// getRecipient shows a profile.
func (s *Server) getRecipient(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	x, err := s.Recipients.Profile(r.Context(), principalFrom(r.Context()).TenantID, id)
	s.answer(w, r, http.StatusOK, RecipientView(x), err, "the recipient store", nil)
}

// updateRecipient changes the fields named.
func (s *Server) updateRecipient(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	var in RecipientInput
	if prob := decodeJSON(r, recipients.MaxDataBytes+4<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	x, err := s.Recipients.Update(r.Context(), principalFrom(r.Context()).TenantID, id, domain.RecipientPatch{
		Email: in.Email, Phone: in.Phone, Locale: in.Locale, Timezone: in.Timezone, Data: in.data()})
	s.answer(w, r, http.StatusOK, RecipientView(x), err, "the recipient store (nothing changed)", nil)
}

// deleteRecipient removes a profile; its messages stay.
func (s *Server) deleteRecipient(w http.ResponseWriter, r *http.Request) {
	id, ok := recipientID(w, r)
	if !ok {
		return
	}
	err := s.Recipients.Delete(r.Context(), principalFrom(r.Context()).TenantID, id)
	s.answer(w, r, http.StatusNoContent, nil, err, "the recipient store (nothing changed)", nil)
}

// listRecipients pages through the profiles in id order; q finds one by id, email or phone.
func (s *Server) listRecipients(w http.ResponseWriter, r *http.Request) {
	f := domain.RecipientFilter{Limit: 50}
	find := func(name, v string) (string, bool) {
		if name != "q" {
			return "", false
		}
		f.Find = v
		if len(v) > 320 {
			return "must be at most 320 characters: a recipient id, an email address or a phone number", true
		}
		return "", true
	}
	if bad := pageQuery(r.URL.Query(), &f.Limit, &f.Cursor, find); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	list, next, err := s.Recipients.Profiles(r.Context(), principalFrom(r.Context()).TenantID, f)
	writePage(s, w, r, "recipients", Views(list, RecipientView), next, err)
}
