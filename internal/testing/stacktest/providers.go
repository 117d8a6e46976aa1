package stacktest

import "github.com/logicspike/comms/internal/testing/fakeprovider"

// TwilioConfig adds an SMS config of tw's account for the tenant of key through the API (its
// Save & Test sends through tw) and returns the config's id. The stack's Options.Env must point
// TwilioBaseURL at tw.
func (s *Stack) TwilioConfig(key string, tw *fakeprovider.Twilio) string {
	s.tb.Helper()
	var out struct{ ID string }
	if resp := s.Do("POST", "/v1/providers", key, map[string]any{
		"type": "twilio", "name": "twilio " + tw.AccountSID[len(tw.AccountSID)-4:], "channel": "sms", "test_recipient": "+14155550199",
		"credentials": map[string]any{"account_sid": tw.AccountSID, "auth_token": tw.AuthToken},
		"sender":      map[string]any{"from": "+14155550100"},
	}, nil, &out); resp.StatusCode != 201 {
		s.tb.Fatalf("create twilio config: %d", resp.StatusCode)
	}
	return out.ID
}
