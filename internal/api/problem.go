package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/logicspike/comms/internal/quota"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// problemBase prefixes every problem type URI; docs/errors.md describes each.
const problemBase = "https://github.com/logicspike/comms/blob/main/docs/errors.md#"

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string               `json:"type"`
	Title    string               `json:"title"`
	Status   int                  `json:"status"`
	Detail   string               `json:"detail,omitempty"`
	Instance string               `json:"instance,omitempty"`
	Errors   []message.FieldError `json:"errors,omitempty"`

	// Provider failures (provider-test-failed): the normalized code, the provider's own code and
	// words, and whether retrying the same thing can help.
	Code            string `json:"code,omitempty"`
	ProviderCode    string `json:"provider_code,omitempty"`
	ProviderMessage string `json:"provider_message,omitempty"`
	Permanent       *bool  `json:"permanent,omitempty"`

	// Quota refusals (quota-exceeded): the channel, its hard limit, what the month used, and when
	// the month's count starts again.
	Quota *QuotaState `json:"quota,omitempty"`

	retryAfter int // seconds; sent as the Retry-After header
}

func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: problemBase + slug, Title: title, Status: status, Detail: detail}
}

func fieldProblem(status int, slug, title string, fields ...message.FieldError) *Problem {
	p := problem(status, slug, title, "")
	p.Errors = fields
	if len(fields) == 1 {
		p.Detail = fields[0].Field + ": " + fields[0].Message
	} else if len(fields) > 1 {
		p.Detail = strconv.Itoa(len(fields)) + " fields are invalid; see errors"
	}
	return p
}

var (
	errUnauthorized = problem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
		"send a valid, unrevoked, unexpired API key as 'Authorization: Bearer <key>'")
	errForbidden = problem(http.StatusForbidden, "forbidden", "Forbidden", "this API key may not call this endpoint")
	errNotFound  = problem(http.StatusNotFound, "not-found", "Not found", "")
)

func unavailable(detail string) *Problem {
	p := problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", detail)
	p.retryAfter = 1
	return p
}

// quotaProblem is the answer to a request the tenant's quota refused, or could not check.
func quotaProblem(err error) *Problem {
	var qe *quota.ExceededError
	switch {
	case errors.As(err, &qe):
		p := problem(http.StatusTooManyRequests, "quota-exceeded", "Quota exceeded",
			fmt.Sprintf("this tenant's %s quota is %d %s a month; %d are used and this request needs %d more. Nothing was recorded; the count starts again at %s",
				qe.Channel, qe.Limit, quotaUnit(qe.Channel), qe.Used, qe.Requested, qe.ResetAt.Format(time.RFC3339)))
		p.Quota = &QuotaState{Channel: qe.Channel, Limit: qe.Limit, Used: qe.Used, Remaining: max(qe.Limit-qe.Used, 0), ResetsAt: qe.ResetAt}
		p.retryAfter = max(1, int(time.Until(qe.ResetAt).Seconds()))
		return p
	case errors.Is(err, quota.ErrUnavailable):
		p := problem(http.StatusServiceUnavailable, "quota-unavailable", "Quota cannot be checked",
			"this tenant's quota cannot be checked right now; nothing was recorded: retry shortly with the same Idempotency-Key")
		p.retryAfter = 5
		return p
	}
	return nil
}

func quotaUnit(ch message.Channel) string {
	if ch == message.SMS {
		return "SMS segments"
	}
	return "emails"
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	out := *p
	out.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="comms"`)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer writes v with status (nil v: the status alone), or the problem err stands for: a
// validation error 422 naming the fields, store.ErrNotFound 404 (another tenant's resource too,
// never 403), what special makes of errors particular to the resource (nil: none), and otherwise
// 503 saying what is unreachable, logged.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error, what string, special func(error) *Problem) {
	var verr *message.ValidationError
	switch {
	case err == nil:
		if v == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, v)
	case errors.As(err, &verr):
		writeProblem(w, r, fieldProblem(http.StatusUnprocessableEntity, "validation", "Invalid request", verr.Fields...))
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, errNotFound)
	case special != nil && special(err) != nil:
		writeProblem(w, r, special(err))
	default:
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "request failed", "tenant_id", principalFrom(r.Context()).TenantID, "path", r.URL.Path, "err", err)
		}
		writeProblem(w, r, unavailable("could not reach "+what+"; retry shortly"))
	}
}
