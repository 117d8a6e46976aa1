package providerconfig

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/logicspike/comms/internal/platform/netguard"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/webpush"
)

// testSubscription is a browser's PushSubscription given as a push config's test device.
type testSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// checkPushTarget names what is wrong with a push config's test device: a token, or a Web Push
// subscription as JSON (test_subscription). A bad subscription is named field by field.
func checkPushTarget(f *provider.Fields, to string) {
	if !strings.HasPrefix(to, "{") {
		if strings.IndexFunc(to, func(r rune) bool { return r <= ' ' }) >= 0 || len(to) > 4096 {
			f.Add("test_recipient", "must be a device token: at most 4096 characters, no spaces")
		}
		return
	}
	var sub testSubscription
	if err := json.Unmarshal([]byte(to), &sub); err != nil {
		f.Add("test_subscription", "must be a browser's PushSubscription: {\"endpoint\", \"keys\": {\"p256dh\", \"auth\"}}")
		return
	}
	// The adapter refuses an endpoint it may not reach; here only its shape is checked.
	if msg := netguard.CheckURL(sub.Endpoint, true); msg != "" {
		f.Add("test_subscription.endpoint", "%s", msg)
	}
	if _, err := webpush.ParseKeys(sub.Keys.P256DH, sub.Keys.Auth); err != nil {
		name, msg, _ := strings.Cut(err.Error(), ": ")
		f.Add("test_subscription.keys."+name, "%s", msg)
	}
}

// pushTarget is the token, or the endpoint and keys, of a checked test device.
func pushTarget(to string) (string, *provider.Device) {
	var sub testSubscription
	if json.Unmarshal([]byte(to), &sub) != nil {
		return to, nil
	}
	return sub.Endpoint, &provider.Device{P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}
}

// credentialsOf is what is sealed: the credentials as the adapter completed them (a Web Push
// config's generated keys), or as given.
func credentialsOf(a provider.Adapter, given json.RawMessage) json.RawMessage {
	if c, ok := a.(provider.Completer); ok {
		return c.Credentials()
	}
	return given
}

// keepCredentials is next with the fields of typ's KeptCredentials that it omits taken from cur:
// a Web Push config's new contact keeps the key pair its browsers subscribed with. Either that
// does not decode as an object is returned as next, for the adapter to refuse.
func keepCredentials(typ string, cur, next json.RawMessage) json.RawMessage {
	reg, _ := provider.Lookup(typ)
	if len(reg.KeptCredentials) == 0 {
		return next
	}
	var c, n map[string]json.RawMessage
	if json.Unmarshal(cur, &c) != nil || json.Unmarshal(next, &n) != nil || n == nil {
		return next
	}
	for _, k := range reg.KeptCredentials {
		if _, given := n[k]; !given && c[k] != nil {
			n[k] = c[k]
		}
	}
	out, _ := json.Marshal(n)
	return out
}

// validatePush is Save & Test of a push config given no test device: the provider checks the
// credentials where it can (FCM's validate_only); otherwise New's checks of the keys are all.
func validatePush(ctx context.Context, cfg provider.Config, a provider.Adapter, log *slog.Logger) (TestResult, error) {
	v, ok := a.(provider.Validator)
	if !ok {
		return TestResult{SentAt: time.Now().UTC(), Note: "no test device was given: the keys were checked and nothing was sent"}, nil
	}
	if err := v.Validate(ctx); err != nil {
		pe := provider.Classify(cfg.Type, err)
		log.WarnContext(ctx, "provider test validation failed", "tenant_id", cfg.TenantID, "type", cfg.Type, "code", pe.Code)
		return TestResult{}, &TestFailedError{Err: pe}
	}
	return TestResult{SentAt: time.Now().UTC(), Note: "no test device was given: " + provider.DisplayName(cfg.Type) +
		" validated the credentials with a notification it did not deliver"}, nil
}
