// Package rekey re-seals the tenants' webhook signing secrets and inbox secrets under the key
// ring's newest key, as providerconfig.Rotate does provider credentials: together they are
// `commsctl keys rotate` (docs/operations.md#secrets-and-key-rotation).
package rekey

import (
	"context"
	"fmt"

	"github.com/logicspike/comms/internal/inbox"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/internal/webhooks"
)

// Store is what a rotation reads and writes; *store.Store implements it.
type Store interface {
	ListSecretsNotUnder(ctx context.Context, t store.SecretTable, current, afterID string, limit int) ([]store.SealedSecret, error)
	ResealSecret(ctx context.Context, t store.SecretTable, old, resealed store.SealedSecret) (bool, error)
}

// Kind is one table of secrets and what binds each of its ciphertexts to its row.
type Kind struct {
	Name  string // for people: "webhook secrets"
	Table store.SecretTable
	AAD   func(s store.SealedSecret) []byte
}

// Kinds are every table of sealed secrets a rotation walks.
var Kinds = []Kind{
	{"webhook secrets", store.WebhookSecrets, func(s store.SealedSecret) []byte { return webhooks.SecretAAD(s.TenantID, s.ID) }},
	{"inbox secrets", store.InboxSecrets, func(s store.SealedSecret) []byte { return inbox.SecretAAD(s.TenantID) }},
}

// Report counts a rotation's work on one kind.
type Report struct {
	Resealed int // now under the newest key
	Skipped  int // rotated by their tenant meanwhile (so already under the newest key)
}

// Reseal re-seals every secret of k not under ring's newest key (the previous secret a rotation
// keeps, too), batch rows at a time in id order. Like providerconfig.Rotate it is resumable, and
// each row is replaced with a compare-and-swap on its old ciphertexts.
func Reseal(ctx context.Context, st Store, ring *secrets.Ring, k Kind, batch int) (Report, error) {
	var rep Report
	current, after := ring.Current(), ""
	for {
		rows, err := st.ListSecretsNotUnder(ctx, k.Table, current, after, batch)
		if err != nil || len(rows) == 0 {
			return rep, err
		}
		for _, old := range rows {
			after = old.ID
			aad := k.AAD(old)
			resealed := old
			if resealed.Version, resealed.Sealed, err = reseal(ring, old.Version, old.Sealed, aad); err != nil {
				return rep, fmt.Errorf("%s of %s: %w", k.Name, old.ID, err)
			}
			if old.PreviousSealed != nil {
				if resealed.PreviousVersion, resealed.PreviousSealed, err = reseal(ring, old.PreviousVersion, old.PreviousSealed, aad); err != nil {
					return rep, fmt.Errorf("the previous of the %s of %s: %w", k.Name, old.ID, err)
				}
			}
			ok, err := st.ResealSecret(ctx, k.Table, old, resealed)
			if err != nil {
				return rep, err
			}
			if ok {
				rep.Resealed++
			} else {
				rep.Skipped++
			}
		}
	}
}

func reseal(ring *secrets.Ring, version string, sealed, aad []byte) (string, []byte, error) {
	if version == ring.Current() {
		return version, sealed, nil
	}
	plain, err := ring.Open(version, sealed, aad)
	if err != nil {
		return "", nil, err
	}
	return ring.Seal(plain, aad)
}
