package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/inbox"
	"github.com/logicspike/comms/internal/recipients"
	"github.com/logicspike/comms/pkg/message"
)

// The inbox (docs/inbox.md): a recipient's in_app messages, read with a recipient token.

// InboxItem is an inbox message as the recipient's frontend shows it.
type InboxItem struct {
	ID         string           `json:"id"`
	Title      string           `json:"title,omitempty"`
	Body       string           `json:"body,omitempty"`
	ActionURL  string           `json:"action_url,omitempty"`
	Data       json.RawMessage  `json:"data,omitempty"`
	Category   message.Category `json:"category"`
	CreatedAt  time.Time        `json:"created_at"`
	SentAt     *time.Time       `json:"sent_at,omitempty"`
	SeenAt     *time.Time       `json:"seen_at,omitempty"`
	ReadAt     *time.Time       `json:"read_at,omitempty"`
	ArchivedAt *time.Time       `json:"archived_at,omitempty"`
}

// InboxItemView is it as the API shows it.
func InboxItemView(it domain.InboxItem) InboxItem {
	return InboxItem{ID: it.ID, Title: it.Content.Title, Body: it.Content.Body, ActionURL: it.Content.ActionURL, Data: it.Content.Data,
		Category: it.Category, CreatedAt: it.CreatedAt, SentAt: it.SentAt, SeenAt: it.SeenAt, ReadAt: it.ReadAt, ArchivedAt: it.ArchivedAt}
}

// InboxToken answers POST /v1/recipients/{id}/inbox-tokens.
type InboxToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// InboxTokenRequest is its body (optional).
type InboxTokenRequest struct {
	TTLSeconds int64 `json:"ttl_seconds"`
}

type readerKey struct{}

func readerFrom(ctx context.Context) inbox.Reader {
	r, _ := ctx.Value(readerKey{}).(inbox.Reader)
	return r
}

var errBadRecipientToken = problem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
	"send a valid, unexpired recipient token (POST /v1/recipients/{id}/inbox-tokens) as 'Authorization: Bearer <token>' or ?token=")

// authenticateRecipient lets a request in with a recipient token (Authorization: Bearer, or the
// token query parameter, which EventSource needs), never with an API key.
func (s *Server) authenticateRecipient(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token = strings.TrimSpace(token); token == "" {
			token = r.URL.Query().Get("token")
		}
		if s.Inbox == nil || strings.HasPrefix(token, authKeyPrefix) {
			writeProblem(w, r, errBadRecipientToken)
			return
		}
		reader, err := s.Inbox.Verify(r.Context(), token, time.Now())
		if errors.Is(err, inbox.ErrInvalidToken) {
			writeProblem(w, r, errBadRecipientToken)
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "inbox secret lookup failed", "err", err)
			writeProblem(w, r, unavailable("could not check the token; retry shortly"))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !s.allowOrigin(w, r, reader.TenantID, origin) {
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, Principal{Kind: "recipient", TenantID: reader.TenantID})
		next(w, r.WithContext(context.WithValue(ctx, readerKey{}, reader)))
	}
}

// createInboxToken signs a recipient token for a profile of the caller's tenant.
func (s *Server) createInboxToken(w http.ResponseWriter, r *http.Request) {
	var req InboxTokenRequest
	if r.ContentLength != 0 {
		if prob := decodeJSON(r, 4<<10, &req); prob != nil {
			writeProblem(w, r, prob)
			return
		}
	}
	id := r.PathValue("id")
	if msg := recipients.ValidID(id); msg != "" {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid path", message.FieldError{Field: "id", Message: msg}))
		return
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > int64(inbox.MaxTokenTTL/time.Second) {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "ttl_seconds", Message: "must be from 1 to 86400 (a day), or absent for an hour"}))
		return
	}
	token, exp, err := s.Inbox.IssueToken(r.Context(), principalFrom(r.Context()).TenantID, id, time.Duration(req.TTLSeconds)*time.Second)
	s.answer(w, r, http.StatusCreated, InboxToken{Token: token, ExpiresAt: exp.UTC()}, err, "the recipient store", nil)
}

// listInbox pages through the reader's inbox, newest first, with its unread count.
func (s *Server) listInbox(w http.ResponseWriter, r *http.Request) {
	f := domain.InboxFilter{Limit: 50}
	bad := pageQuery(r.URL.Query(), &f.Limit, &f.Cursor, func(name, v string) (string, bool) {
		if name != "archived" {
			return "", name == "token"
		}
		f.Archived = v == "true"
		if v != "true" && v != "false" {
			return `must be "true" or "false"`, true
		}
		return "", true
	})
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	page, err := s.Inbox.Page(r.Context(), readerFrom(r.Context()), f)
	if err != nil { // a cursor of no page, or the store down
		writePage(s, w, r, "inbox", []InboxItem{}, "", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": Views(page.Items, InboxItemView), "next_cursor": page.Next, "unread_count": page.UnreadCount})
}

// markInbox records that the reader saw, read or archived one of its messages.
func (s *Server) markInbox(action domain.InboxAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		it, err := s.Inbox.Mark(r.Context(), readerFrom(r.Context()), r.PathValue("id"), action)
		s.answer(w, r, http.StatusOK, InboxItemView(it), err, "the inbox", nil)
	}
}

// readAllInbox marks every message of the reader's inbox read.
func (s *Server) readAllInbox(w http.ResponseWriter, r *http.Request) {
	n, err := s.Inbox.ReadAll(r.Context(), readerFrom(r.Context()))
	s.answer(w, r, http.StatusOK, map[string]int64{"marked": n}, err, "the inbox", nil)
}

// allowOrigin answers a browser's request from origin with CORS headers when it is one of the
// tenant's inbox_origins (PATCH /v1/settings), and refuses it (403, before it changes anything)
// otherwise.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request, tenantID, origin string) bool {
	t, found, err := s.auth.tenant(r.Context(), s.Accounts, tenantID)
	switch {
	case err != nil:
		writeProblem(w, r, unavailable("the tenant store is unreachable; retry shortly"))
		return false
	case !found || !slices.Contains(t.InboxOrigins, origin):
		writeProblem(w, r, problem(http.StatusForbidden, "origin-not-allowed", "Origin not allowed",
			"this page's origin is not one of the tenant's inbox_origins (PATCH /v1/settings)"))
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	return true
}

// inboxPreflight answers a browser's CORS preflight for the inbox routes, for any origin: it
// carries no token, so the tenant is not known yet. The request that follows is held to the
// tenant's inbox_origins (allowOrigin). It reports whether r was such a preflight.
func inboxPreflight(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" ||
		r.URL.Path != "/v1/inbox" && !strings.HasPrefix(r.URL.Path, "/v1/inbox/") {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Origin")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// InboxSecret is a tenant's new inbox secret, shown once (docs/inbox.md#tokens-your-backend-signs).
type InboxSecret struct {
	Secret string `json:"secret"`
	// PreviousValidUntil is when tokens signed with the secret this one replaced stop working.
	PreviousValidUntil *time.Time `json:"previous_valid_until,omitempty"`
}

// rotateInboxSecret makes the caller's tenant a new inbox secret, for its backend to sign
// recipient tokens with.
func (s *Server) rotateInboxSecret(w http.ResponseWriter, r *http.Request) {
	secret, until, err := s.Inbox.RotateSecret(r.Context(), principalFrom(r.Context()).TenantID)
	s.answer(w, r, http.StatusCreated, InboxSecret{Secret: secret, PreviousValidUntil: until}, err, "the secret store (nothing changed)", nil)
}

// removeInboxSecret stops tokens signed with the tenant's inbox secrets from working.
func (s *Server) removeInboxSecret(w http.ResponseWriter, r *http.Request) {
	err := s.Inbox.RemoveSecret(r.Context(), principalFrom(r.Context()).TenantID)
	s.answer(w, r, http.StatusNoContent, nil, err, "the secret store (nothing changed)", nil)
}
