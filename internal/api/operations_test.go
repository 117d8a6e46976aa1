package api_test

import (
	"net/http"
	"testing"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/provider"
)

// The success path of each operation the other tests reach only with refusals, through the
// stack's client, which validates every request and answer against docs/openapi.json.
func TestAdminAndTenantOperationsMatchTheSpec(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	tenantID, key := s.Tenant()
	steps := []struct {
		method, path, key string
		body              any
		want              int
	}{
		{"GET", "/admin/tenants?limit=5", s.AdminKey, nil, 200},
		{"GET", "/admin/api-keys?tenant_id=" + tenantID, s.AdminKey, nil, 200},
		{"POST", "/v1/suppressions", key, map[string]any{"channel": "sms", "recipient": "+14155550177", "detail": "asked by phone"}, 201},
		{"DELETE", "/v1/suppressions/sms/%2B14155550177", key, nil, 204},
		{"GET", "/admin/callbacks/unmatched", s.AdminKey, nil, 200},
		{"POST", "/admin/callbacks/unmatched/retry", s.AdminKey, nil, 200},
	}
	for _, st := range steps {
		if resp := s.Do(st.method, st.path, st.key, st.body, nil, nil); resp.StatusCode != st.want {
			t.Errorf("%s %s: %d, want %d", st.method, st.path, resp.StatusCode, st.want)
		}
	}

	var sys api.Provider
	if resp := s.Do("POST", "/admin/providers", s.AdminKey, twilioInput(tw, "platform twilio", tw.AuthToken), nil, &sys); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a system default: %d", resp.StatusCode)
	}
	var own api.Provider
	if resp := s.Do("POST", "/v1/providers", key, twilioInput(tw, "own twilio", tw.AuthToken), nil, &own); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	for _, st := range []struct {
		method, path, key string
		body              any
		want              int
	}{
		{"GET", "/admin/providers", s.AdminKey, nil, 200},
		{"GET", "/admin/providers/" + sys.ID, s.AdminKey, nil, 200},
		{"PATCH", "/admin/providers/" + sys.ID, s.AdminKey, map[string]any{"priority": 3}, 200},
		{"POST", "/admin/providers/" + sys.ID + "/test", s.AdminKey, map[string]any{"test_recipient": "+14155550199"}, 200},
		{"DELETE", "/admin/providers/" + sys.ID, s.AdminKey, nil, 204},
		{"DELETE", "/v1/providers/" + own.ID, key, nil, 204},
	} {
		if resp := s.Do(st.method, st.path, st.key, st.body, nil, nil); resp.StatusCode != st.want {
			t.Errorf("%s %s: %d, want %d", st.method, st.path, resp.StatusCode, st.want)
		}
	}
}
