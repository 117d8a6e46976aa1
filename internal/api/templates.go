package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/templates"
	"github.com/logicspike/comms/pkg/message"
)

// The template endpoints (/v1/templates): CRUD, immutable versions, activation and preview.

// maxTemplateBody bounds a template request: a version's html and text at their render limit.
const maxTemplateBody = 3*templates.MaxOutputBytes + 64<<10

// templateAnswer writes v with status, or the problem err stands for.
func (s *Server) templateAnswer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	s.answer(w, r, status, v, err, "the template store", func(err error) *Problem {
		if errors.Is(err, store.ErrKeyTaken) {
			return fieldProblem(http.StatusConflict, "name-taken", "Template key taken",
				message.FieldError{Field: "key", Message: "is already used by another template of this tenant (archived ones included)"})
		}
		return nil
	})
}

func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) {
	var in templates.Input
	if prob := decodeJSON(r, templates.MaxSchemaBytes+16<<10, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	t, err := s.Templates.Create(r.Context(), principalFrom(r.Context()).TenantID, in)
	if err == nil {
		w.Header().Set("Location", "/v1/templates/"+t.Key)
	}
	s.templateAnswer(w, r, http.StatusCreated, TemplateView(t), err)
}

func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	limit, cursor, archived := 50, "", false
	bad := pageQuery(r.URL.Query(), &limit, &cursor, func(name, v string) (string, bool) {
		if name != "archived" {
			return "", false
		}
		b, err := strconv.ParseBool(v)
		archived = b
		if err != nil {
			return "must be true or false", true
		}
		return "", true
	})
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	list, next, err := s.Templates.List(r.Context(), principalFrom(r.Context()).TenantID, cursor, archived, limit)
	writePage(s, w, r, "templates", Views(list, TemplateView), next, err)
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := s.Templates.Get(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"))
	s.templateAnswer(w, r, http.StatusOK, TemplateView(t), err)
}

func (s *Server) updateTemplate(w http.ResponseWriter, r *http.Request) {
	var p TemplatePatch
	if prob := decodeJSON(r, templates.MaxSchemaBytes+16<<10, &p); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	t, err := s.Templates.Update(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"), p.domain())
	s.templateAnswer(w, r, http.StatusOK, TemplateView(t), err)
}

func (s *Server) archiveTemplate(w http.ResponseWriter, r *http.Request) {
	err := s.Templates.Archive(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"))
	s.templateAnswer(w, r, http.StatusNoContent, nil, err)
}

func (s *Server) createTemplateVersion(w http.ResponseWriter, r *http.Request) {
	var in templates.VersionInput
	if prob := decodeJSON(r, maxTemplateBody, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	key := r.PathValue("key")
	v, err := s.Templates.CreateVersion(r.Context(), principalFrom(r.Context()).TenantID, key, in)
	if err == nil {
		w.Header().Set("Location", "/v1/templates/"+key+"/versions/"+strconv.Itoa(v.Version))
	}
	s.templateAnswer(w, r, http.StatusCreated, TemplateVersionView(v), err)
}

func (s *Server) listTemplateVersions(w http.ResponseWriter, r *http.Request) {
	limit, before := 50, 0
	var bad []message.FieldError
	for name, vals := range r.URL.Query() {
		n, err := strconv.Atoi(vals[0])
		switch {
		case name == "limit" && (err != nil || n < 1 || n > MaxPageSize):
			bad = append(bad, message.FieldError{Field: name, Message: "must be an integer from 1 to " + strconv.Itoa(MaxPageSize)})
		case name == "limit":
			limit = n
		case name == "cursor" && (err != nil || n < 1):
			bad = append(bad, message.FieldError{Field: name, Message: "is not a cursor from a previous page"})
		case name == "cursor":
			before = n
		default:
			bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
		}
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	tenantID, key := principalFrom(r.Context()).TenantID, r.PathValue("key")
	list, next, err := s.Templates.ListVersions(r.Context(), tenantID, key, before, limit)
	if errors.Is(err, store.ErrNotFound) {
		s.templateAnswer(w, r, 0, nil, err)
		return
	}
	cursor := ""
	if next > 0 {
		cursor = strconv.Itoa(next)
	}
	writePage(s, w, r, "template versions", Views(list, TemplateVersionView), cursor, err)
}

// versionNumber reads {n}, answering 404 for anything but a positive number.
func versionNumber(w http.ResponseWriter, r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		writeProblem(w, r, errNotFound)
		return 0, false
	}
	return n, true
}

func (s *Server) getTemplateVersion(w http.ResponseWriter, r *http.Request) {
	if n, ok := versionNumber(w, r); ok {
		v, err := s.Templates.GetVersion(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"), n)
		s.templateAnswer(w, r, http.StatusOK, TemplateVersionView(v), err)
	}
}

func (s *Server) activateTemplateVersion(w http.ResponseWriter, r *http.Request) {
	if n, ok := versionNumber(w, r); ok {
		v, err := s.Templates.Activate(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"), n)
		s.templateAnswer(w, r, http.StatusOK, TemplateVersionView(v), err)
	}
}

func (s *Server) previewTemplate(w http.ResponseWriter, r *http.Request) {
	var in templates.PreviewInput
	if prob := decodeJSON(r, message.MaxRequestBodySize, &in); prob != nil {
		writeProblem(w, r, prob)
		return
	}
	if in.Version < 0 {
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request",
			message.FieldError{Field: "version", Message: "must be a version number, or absent for the active version"}))
		return
	}
	p, err := s.Templates.Preview(r.Context(), principalFrom(r.Context()).TenantID, r.PathValue("key"), in)
	s.templateAnswer(w, r, http.StatusOK, p, err)
}
