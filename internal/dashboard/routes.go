package dashboard

import (
	"net/http"

	"github.com/logicspike/comms/internal/domain"
)

type pageFunc func(http.ResponseWriter, *http.Request, domain.Session)

// page is one signed-in route and the kind of key whose sessions may use it ("": either).
type page struct {
	pattern string
	kind    domain.KeyKind
	page    pageFunc
}

// pagesTable is every signed-in route, in one table: a tenant's pages, the providers page (a
// tenant's own configs, or the system defaults for an operator), and the ops pages.
func (h *Handler) pagesTable() []page {
	tenant, admin := domain.KindTenant, domain.KindAdmin
	return []page{
		{"GET /ui/{$}", "", h.home},
		{"GET /ui/errors", tenant, h.providerErrors},
		{"GET /ui/messages", tenant, h.messages},
		{"GET /ui/messages/{id}", tenant, h.message},
		{"GET /ui/recipients", tenant, h.recipientList},
		{"GET /ui/recipients/{id}", tenant, h.recipient},
		{"GET /ui/suppressions", tenant, h.suppressions},
		{"POST /ui/suppressions", tenant, h.addSuppression},
		{"POST /ui/suppressions/remove", tenant, h.removeSuppression},
		{"GET /ui/templates", tenant, h.templateList},
		{"GET /ui/templates/{key}", tenant, h.template},
		{"POST /ui/templates/{key}/preview", tenant, h.previewTemplate},
		{"GET /ui/templates/{key}/html", tenant, h.previewHTML},
		{"POST /ui/templates/{key}/versions/{n}/activate", tenant, h.activateTemplate},
		{"GET /ui/webhooks", tenant, h.webhookList},
		{"POST /ui/webhooks", tenant, h.createWebhook},
		{"GET /ui/webhooks/{id}", tenant, h.webhook},
		{"POST /ui/webhooks/{id}/test", tenant, h.testWebhook},
		{"GET /ui/usage", tenant, h.usage},
		{"GET /ui/usage/export", tenant, h.exportUsage},
		{"GET /ui/keys", tenant, h.keys},
		{"POST /ui/keys", tenant, h.createKey},
		{"POST /ui/keys/revoke", tenant, h.revokeKey},
		{"GET /ui/audit", tenant, h.audit},

		{"GET /ui/providers", "", h.providers},
		{"POST /ui/providers", "", h.createProvider},
		{"GET /ui/providers/{id}", "", h.provider},
		{"POST /ui/providers/{id}", "", h.updateProvider},
		{"POST /ui/providers/{id}/test", "", h.testProvider},
		{"POST /ui/providers/{id}/delete", "", h.deleteProvider},

		{"GET /ui/ops/tenants", admin, h.tenants},
		{"POST /ui/ops/tenants/{id}", admin, h.updateTenant},
		{"GET /ui/ops/dlq", admin, h.deadLetters},
		{"POST /ui/ops/dlq/replay", admin, h.replay},
	}
}

// only serves page to sessions of kind (any, for ""); others are sent to their own first page.
func only(kind domain.KeyKind, page pageFunc) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, sess domain.Session) {
		if kind != "" && sess.Key.Kind != kind {
			http.Redirect(w, r, "/ui/", http.StatusSeeOther)
			return
		}
		page(w, r, sess)
	}
}

// home is the first page: the overview for a tenant, the tenants for an operator.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, sess domain.Session) {
	if sess.Key.Kind == domain.KindAdmin {
		http.Redirect(w, r, "/ui/ops/tenants", http.StatusSeeOther)
		return
	}
	h.overview(w, r, sess)
}
