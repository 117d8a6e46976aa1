package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/logicspike/comms/internal/api"
)

// form is what a posted form gets back when the API refuses it: the values typed (never a
// secret), each field's problem, and the problem as a whole. The page comes back 200, as the
// sign-in form does: the form is the answer (a browser reports any other status of a page it
// loads as a failed load).
type form struct {
	Name    string // which form on the page was posted
	Values  map[string]string
	Errors  map[string]string
	Problem *api.Problem
}

func refused(name string, values map[string]string, prob *api.Problem) *form {
	f := &form{Name: name, Values: values, Errors: map[string]string{}, Problem: prob}
	for _, e := range prob.Errors {
		f.Errors[e.Field] = e.Message
	}
	return f
}

// field reads a posted value and keeps it to show again.
func field(r *http.Request, name string, values map[string]string) string {
	v := strings.TrimSpace(r.PostFormValue(name))
	values[name] = v
	return v
}

// number is v as a JSON number, or as the string typed so the API names the field.
func number(v string) any {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return json.Number(strconv.FormatFloat(n, 'f', -1, 64))
	}
	return v
}

// jsonOrString is v as the JSON value it holds (a pasted PushSubscription), or as the string typed
// so the API names the field.
func jsonOrString(v string) any {
	if json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	return v
}

// list is v, typed comma-separated, as the JSON array of its non-empty items.
func list(v string) []string {
	out := []string{}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// failCall shows an API answer the page cannot do without.
func (h *Handler) failCall(w http.ResponseWriter, r *http.Request, prob *api.Problem, err error) {
	if err == nil && prob.Status == http.StatusNotFound {
		h.render(w, r, http.StatusNotFound, "missing.html", map[string]any{})
		return
	}
	if err == nil {
		err = &problemError{prob}
	}
	h.fail(w, r, err)
}

type problemError struct{ p *api.Problem }

func (e *problemError) Error() string { return e.p.Title + ": " + e.p.Detail }
