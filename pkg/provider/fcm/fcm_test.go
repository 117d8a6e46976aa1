package fcm

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/logicspike/comms/pkg/provider"
)

// Each answer docs/push.md's FCM table names maps onto its code, and only UNREGISTERED removes
// the device.
func TestFCMsAnswersMapOntoTheTaxonomy(t *testing.T) {
	body := func(status int, rpc, fcmErr, msg string) []byte {
		return []byte(`{"error":{"code":` + strconv.Itoa(status) + `,"message":"` + msg + `","status":"` + rpc +
			`","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + fcmErr + `"}]}}`)
	}
	for _, c := range []struct {
		status        int
		rpc, fcmErr   string
		msg           string
		want          provider.Code
		gone, retried bool
	}{
		{404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", provider.InvalidRecipient, true, false},
		{403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch", provider.InvalidRecipient, false, false},
		{400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", provider.InvalidRecipient, false, false},
		{400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'", provider.ContentRejected, false, false},
		{429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded", provider.RateLimited, false, true},
		{401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "APNs certificate", provider.AuthFailed, false, false},
		{500, "INTERNAL", "INTERNAL", "Internal error", provider.ProviderUnavailable, false, true},
		{503, "UNAVAILABLE", "UNAVAILABLE", "The service is unavailable", provider.ProviderUnavailable, false, true},
	} {
		e := failure(&http.Response{StatusCode: c.status, Header: http.Header{}}, body(c.status, c.rpc, c.fcmErr, c.msg))
		if e.Code != c.want || e.DeviceGone != c.gone || e.Permanent == c.retried || e.RawCode != c.fcmErr {
			t.Errorf("%d %s %q: %+v, want %s (gone %v, retried %v)", c.status, c.fcmErr, c.msg, e, c.want, c.gone, c.retried)
		}
	}
}
