package api

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/reports"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// tenantIDPattern is what a tenant id filter may hold: the export quotes it into its COPY.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// maxUsageDays bounds a usage query's range.
const maxUsageDays = 400

type usageResponse struct {
	From    string     `json:"from"`
	To      string     `json:"to"`
	GroupBy []string   `json:"group_by"`
	Totals  Counters   `json:"totals"`
	Rows    []UsageRow `json:"rows"`
}

// usage serves the tenant's usage and cost over UTC days, grouped as asked.
func (s *Server) usage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	from, to, groupBy, bad := parseUsageQuery(r.URL.Query(), time.Now().UTC())
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	rows, totals, err := s.Reports.Usage(r.Context(), p.TenantID, from, to, groupBy)
	s.answer(w, r, http.StatusOK, usageResponse{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), GroupBy: groupBy,
		Totals: CountersView(totals), Rows: Views(rows, UsageRowView)}, err, "the usage", nil)
}

// parseUsageQuery reads from and to (UTC days, both included; default the 30 days up to today)
// and group_by (a comma-separated list, repeatable).
func parseUsageQuery(q url.Values, now time.Time) (from, to time.Time, groupBy []string, bad []message.FieldError) {
	to = now.Truncate(24 * time.Hour)
	from = to.AddDate(0, 0, -29)
	groupBy = []string{}
	for name, vals := range q {
		switch name {
		case "from", "to":
			t, err := time.Parse(time.DateOnly, vals[0])
			if err != nil {
				bad = append(bad, message.FieldError{Field: name, Message: "must be a date such as 2026-11-22 (UTC)"})
			} else if name == "from" {
				from = t
			} else {
				to = t
			}
		case "group_by":
			for _, v := range vals {
				for _, g := range strings.Split(v, ",") {
					if _, ok := store.UsageDimensions[g]; !ok {
						bad = append(bad, message.FieldError{Field: name, Message: "must list day, month, channel, provider, template or category"})
					} else if !slices.Contains(groupBy, g) {
						groupBy = append(groupBy, g)
					}
				}
			}
		default:
			bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
		}
	}
	switch {
	case len(bad) > 0:
	case to.Before(from):
		bad = append(bad, message.FieldError{Field: "from", Message: "must not be after to"})
	case to.Sub(from) >= maxUsageDays*24*time.Hour:
		bad = append(bad, message.FieldError{Field: "from", Message: "is too far before to: at most 400 days"})
	}
	return from, to, groupBy, bad
}

// exportUsage streams the caller's billing export for a month as CSV (docs/usage.md).
func (s *Server) exportUsage(w http.ResponseWriter, r *http.Request) {
	s.export(w, r, principalFrom(r.Context()).TenantID, false)
}

// exportAllUsage streams every tenant's billing export for a month, or one tenant's.
func (s *Server) exportAllUsage(w http.ResponseWriter, r *http.Request) {
	s.export(w, r, "", true)
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, tenantID string, admin bool) {
	var (
		month time.Time
		bad   []message.FieldError
	)
	q := r.URL.Query()
	for name, vals := range q {
		switch {
		case name == "month":
			t, err := time.Parse("2006-01", vals[0])
			if err != nil {
				bad = append(bad, message.FieldError{Field: name, Message: "must be a month such as 2026-11 (UTC)"})
			}
			month = t
		case name == "format":
			if vals[0] != "csv" {
				bad = append(bad, message.FieldError{Field: name, Message: `must be "csv"`})
			}
		case name == "tenant_id" && admin:
			tenantID = vals[0]
			if !tenantIDPattern.MatchString(tenantID) {
				bad = append(bad, message.FieldError{Field: name, Message: "must be a tenant id such as ten_4V9kq7rKYp2s8FJk1bQZ3e"})
			}
		default:
			bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
		}
	}
	if !q.Has("month") {
		bad = append(bad, message.FieldError{Field: "month", Message: "is required, such as 2026-11 (UTC)"})
	}
	if len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	name := "comms-usage-" + month.Format("2006-01")
	if tenantID != "" {
		name += "-" + tenantID
	}
	cw := &startedWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		w.WriteHeader(http.StatusOK)
	}}
	rows, err := s.Reports.Export(r.Context(), cw, tenantID, month)
	switch {
	case err == nil:
		s.log.InfoContext(r.Context(), "usage exported", "tenant_id", tenantID, "month", month.Format("2006-01"), "rows", rows)
	case !cw.started:
		s.answer(w, r, 0, nil, err, "the billing export", nil)
	default:
		// The status is sent: abort the response, so that the client sees a failed transfer
		// rather than a short file.
		s.log.ErrorContext(r.Context(), "usage export failed midway", "tenant_id", tenantID, "rows", rows, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// startedWriter calls start before its first write.
type startedWriter struct {
	w       http.ResponseWriter
	start   func()
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.start()
	}
	return s.w.Write(p)
}

// QuotaState is one channel's quota this month.
type QuotaState struct {
	Channel   message.Channel `json:"channel"`
	SoftLimit int64           `json:"soft_limit,omitempty"`
	Limit     int64           `json:"hard_limit"`
	Used      int64           `json:"used"`
	Remaining int64           `json:"remaining"`
	ResetsAt  time.Time       `json:"resets_at"`
}

// quotas serves the caller's quotas with this month's use: one entry per channel with a quota.
func (s *Server) quotas(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if bad := unknownParams(r.URL.Query()); len(bad) > 0 {
		writeProblem(w, r, fieldProblem(http.StatusBadRequest, "validation", "Invalid query", bad...))
		return
	}
	qs, err := s.Reports.Quotas(r.Context(), p.TenantID)
	s.answer(w, r, http.StatusOK, map[string]any{"data": Views(qs, quotaStateView)}, err, "the quotas", nil)
}

func quotaStateView(q reports.QuotaState) QuotaState {
	return QuotaState{Channel: q.Channel, SoftLimit: q.Warning, Limit: q.Limit, Used: q.Used, Remaining: q.Remaining, ResetsAt: q.ResetsAt}
}

func unknownParams(q url.Values) []message.FieldError {
	var bad []message.FieldError
	for name := range q {
		bad = append(bad, message.FieldError{Field: name, Message: "is not a known query parameter"})
	}
	return bad
}
