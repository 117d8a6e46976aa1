package dashboard

import (
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/store"
)

// usage shows this month's usage and cost by channel and provider (GET /v1/usage), the quotas
// as bars (GET /v1/quota), and links to the billing export of this month and the last.
func (h *Handler) usage(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	now := time.Now().UTC()
	month := store.MonthStart(now)
	q := url.Values{"from": {month.Format(time.DateOnly)}, "to": {now.Format(time.DateOnly)}, "group_by": {"channel,provider"}}
	var use struct {
		Totals api.Counters   `json:"totals"`
		Rows   []api.UsageRow `json:"rows"`
	}
	var quotas struct {
		Data []api.QuotaState `json:"data"`
	}
	var providers struct {
		Data []api.Provider `json:"data"`
	}
	for _, c := range []struct {
		path string
		out  any
	}{{"/v1/usage?" + q.Encode(), &use}, {"/v1/quota", &quotas}, {"/v1/providers", &providers}} {
		if prob, err := h.call(r, sess, http.MethodGet, c.path, nil, c.out); err != nil || prob != nil {
			h.failCall(w, r, prob, err)
			return
		}
	}
	names := map[string]string{"": "platform default"}
	for _, p := range providers.Data {
		names[p.ID] = p.Name
	}
	h.render(w, r, http.StatusOK, "usage.html", map[string]any{"Month": month.Format("January 2006"), "Use": use, "Quotas": quotas.Data,
		"Names": names, "Exports": []string{month.Format("2006-01"), month.AddDate(0, -1, 0).Format("2006-01")}})
}

var monthPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}$`)

// exportUsage streams the month's billing export (GET /v1/usage/export), which names itself
// as a download.
func (h *Handler) exportUsage(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	month := r.URL.Query().Get("month")
	if !monthPattern.MatchString(month) {
		http.Error(w, "month must be YYYY-MM", http.StatusBadRequest)
		return
	}
	h.forward(w, r, sess, "/v1/usage/export?format=csv&month="+month)
}
