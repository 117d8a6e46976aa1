package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	"github.com/logicspike/comms/pkg/provider"
)

// A .p8 key is read as the file has it, and as a single-line form field leaves it pasted (the
// dashboard's secret fields): its lines run together, or its base64 body alone.
func TestAKeyIsReadHoweverItWasPasted(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	file := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	lines := strings.Split(strings.TrimSpace(file), "\n")
	for name, p8 := range map[string]string{
		"the file":         file,
		"one line":         strings.Join(lines, ""),
		"spaces for lines": strings.Join(lines, " "),
		"the body alone":   strings.Join(lines[1:len(lines)-1], ""),
	} {
		if got := parseKey(p8); got == nil || !got.Equal(k) {
			t.Errorf("%s: not read", name)
		}
	}
	if parseKey("-----BEGIN PRIVATE KEY-----notakey-----END PRIVATE KEY-----") != nil {
		t.Error("garbage read as a key")
	}
}

// Each answer docs/push.md's APNs table names maps onto its code, and 410 and BadDeviceToken
// remove the device.
func TestAPNsAnswersMapOntoTheTaxonomy(t *testing.T) {
	for _, c := range []struct {
		status        int
		reason        string
		want          provider.Code
		gone, retried bool
	}{
		{410, "Unregistered", provider.InvalidRecipient, true, false},
		{410, "ExpiredToken", provider.InvalidRecipient, true, false},
		{400, "BadDeviceToken", provider.InvalidRecipient, true, false},
		{400, "DeviceTokenNotForTopic", provider.InvalidRecipient, false, false},
		{400, "BadTopic", provider.InvalidSender, false, false},
		{400, "TopicDisallowed", provider.InvalidSender, false, false},
		{403, "InvalidProviderToken", provider.AuthFailed, false, false},
		{403, "ExpiredProviderToken", provider.AuthFailed, false, false},
		{413, "PayloadTooLarge", provider.ContentRejected, false, false},
		{400, "BadCollapseId", provider.ContentRejected, false, false},
		{429, "TooManyRequests", provider.RateLimited, false, true},
		{500, "InternalServerError", provider.ProviderUnavailable, false, true},
		{503, "ServiceUnavailable", provider.ProviderUnavailable, false, true},
	} {
		e := failure(&http.Response{StatusCode: c.status, Header: http.Header{}}, []byte(`{"reason":"`+c.reason+`"}`))
		if e.Code != c.want || e.DeviceGone != c.gone || e.Permanent == c.retried || e.Message != c.reason {
			t.Errorf("%d %s: %+v, want %s (gone %v, retried %v)", c.status, c.reason, e, c.want, c.gone, c.retried)
		}
	}
}
