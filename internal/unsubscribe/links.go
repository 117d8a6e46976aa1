package unsubscribe

import (
	"context"
	"fmt"

	"github.com/logicspike/comms/internal/categories"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/pkg/message"
)

// Subjects names people as preferences keep them; *store.Store implements it.
type Subjects interface {
	PreferenceSubjectKey(ctx context.Context, tenantID string, who domain.PreferenceSubject) (string, error)
}

// Links makes the List-Unsubscribe headers of the emails that need them.
type Links struct {
	Ring     *secrets.Ring
	Base     string // the public receiver's URL (COMMS_PUBLIC_WEBHOOK_URL)
	Cats     *categories.Cache
	Subjects Subjects
}

// Headers returns the headers m carries (none but for an email in one of its tenant's categories
// that is not required): List-Unsubscribe with the signed https link, and
// List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058). The person is the message's
// recipient profile when it names one, else its address.
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
	link := URL(l.Base, Encode(l.Ring, Token{TenantID: m.TenantID, Subject: subject, Category: c.Key}))
	return map[string]string{"List-Unsubscribe": "<" + link + ">", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}, nil
}
