package unsubscribe

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/platform/tenantcache"
	"github.com/logicspike/comms/pkg/message"
)

// Subjects names people as preferences keep them, and reads the tenant's mailbox for unsubscribe
// requests; *store.Store implements it.
type Subjects interface {
	PreferenceSubjectKey(ctx context.Context, tenantID string, who domain.PreferenceSubject) (string, error)
	GetTenant(ctx context.Context, id string) (domain.Tenant, error)
}

// Links makes the List-Unsubscribe headers of the emails that need them.
type Links struct {
	Ring     *secrets.Ring
	Base     string // the public receiver's URL (COMMS_PUBLIC_WEBHOOK_URL)
	Cats     *categories.Cache
	Subjects Subjects
	mailtos  *tenantcache.Cache[string]
	once     sync.Once
}

// MailtoTTL is how long a worker keeps a tenant's unsubscribe_mailto: a change reaches the
// emails sent within this long.
const MailtoTTL = 30 * time.Second

// Headers returns the headers m carries (none but for an email in one of its tenant's categories
// that is not required): List-Unsubscribe with the signed https link, then the tenant's
// unsubscribe_mailto when it has one (subject "unsubscribe <token>", so the mailbox's owner can
// tell who asked and for which category), and List-Unsubscribe-Post: List-Unsubscribe=One-Click
// (RFC 8058). The person is the message's recipient profile when it names one, else its address.
func (l *Links) Headers(ctx context.Context, m message.Message) (map[string]string, error) {
	if l == nil || m.Channel != message.Email || m.Category.BuiltIn() {
		return nil, nil
	}
	cats, err := l.Cats.Get(ctx, m.TenantID)
	if err != nil {
		return nil, fmt.Errorf("read categories: %w", err)
	}
	c, ok := cats[string(m.Category)]
	if !ok || c.Required {
		return nil, nil // a category deleted since the message was accepted has nothing to leave
	}
	who := domain.PreferenceSubject{RecipientID: m.RecipientID}
	if who.RecipientID == "" {
		who = domain.PreferenceSubject{Channel: message.Email, Address: m.To}
	}
	subject, err := l.Subjects.PreferenceSubjectKey(ctx, m.TenantID, who)
	if err != nil {
		return nil, fmt.Errorf("name the recipient: %w", err)
	}
	token := Encode(l.Ring, Token{TenantID: m.TenantID, Subject: subject, Category: c.Key})
	list := "<" + URL(l.Base, token) + ">"
	mailbox, err := l.mailto(ctx, m.TenantID)
	if err != nil {
		return nil, err
	}
	if mailbox != "" {
		list += ", <mailto:" + mailbox + "?subject=" + url.PathEscape("unsubscribe "+token) + ">"
	}
	return map[string]string{"List-Unsubscribe": list, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}, nil
}

// mailto is tenantID's unsubscribe_mailto, read through a cache.
func (l *Links) mailto(ctx context.Context, tenantID string) (string, error) {
	l.once.Do(func() { l.mailtos = tenantcache.New[string](MailtoTTL) })
	return l.mailtos.Get(ctx, tenantID, "", func(ctx context.Context) (string, error) {
		t, err := l.Subjects.GetTenant(ctx, tenantID)
		if err != nil {
			return "", fmt.Errorf("read the tenant's unsubscribe_mailto: %w", err)
		}
		return t.UnsubscribeMailto, nil
	})
}
