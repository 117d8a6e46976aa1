package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/secrets"
	"github.com/logicspike/comms/pkg/standardwebhooks"
)

// RotationOverlap is how long a replaced secret keeps signing beside its successor, so receivers
// can switch over without dropping a delivery.
const RotationOverlap = 24 * time.Hour

// newSecret returns a fresh Standard Webhooks secret: whsec_ and the base64 of 32 random bytes.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// SecretAAD binds a sealed secret to its endpoint: moved to another row, it no longer opens.
func SecretAAD(tenantID, endpointID string) []byte {
	return []byte("comms/webhook_endpoint/v1|" + tenantID + "|" + endpointID)
}

// seal encrypts a secret for storage under the ring's newest key.
func seal(ring *secrets.Ring, tenantID, endpointID, secret string) (version string, sealed []byte, err error) {
	return ring.Seal([]byte(secret), SecretAAD(tenantID, endpointID))
}

// signingKeys opens the endpoint's secrets: the current one, and the previous one while its
// overlap lasts at now.
func signingKeys(ring *secrets.Ring, e domain.WebhookEndpoint, now time.Time) ([][]byte, error) {
	var keys [][]byte
	open := func(version string, sealed []byte) error {
		secret, err := ring.Open(version, sealed, SecretAAD(e.TenantID, e.ID))
		if err != nil {
			return err
		}
		key, err := standardwebhooks.DecodeSecret(string(secret))
		if err != nil {
			return err
		}
		keys = append(keys, key)
		return nil
	}
	if err := open(e.KeyVersion, e.Sealed); err != nil {
		return nil, err
	}
	if e.PreviousSealed != nil && e.PreviousSecretExpiresAt != nil && now.Before(*e.PreviousSecretExpiresAt) {
		if err := open(e.PreviousKeyVersion, e.PreviousSealed); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// signature is the webhook-signature header: one v1 signature per key, space-separated, as
// Standard Webhooks specifies for rotations.
func signature(keys [][]byte, id string, ts time.Time, body []byte) string {
	sigs := make([]string, len(keys))
	for i, k := range keys {
		sigs[i] = standardwebhooks.Sign(k, id, ts, body)
	}
	return strings.Join(sigs, " ")
}
