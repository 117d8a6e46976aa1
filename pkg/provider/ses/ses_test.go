package ses_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/ses"
)

// A tenant's SES in its own AWS account, reached by assuming a role that trusts the platform's
// key: STS AssumeRole first (with the external id), then SendEmail signed with the temporary
// credentials and their session token.
func TestAssumedRole(t *testing.T) {
	f := fakeprovider.NewSES()
	defer f.Close()
	env := provider.Env{SESEndpoint: f.URL, STSEndpoint: f.URL}
	build := func(role, external string) *ses.Adapter {
		creds, _ := json.Marshal(ses.Credentials{Region: f.Region, AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey, RoleARN: role, ExternalID: external})
		a, err := ses.New(provider.Config{ID: "prv_role", Type: ses.Type, Channel: message.Email, Credentials: creds,
			Sender: json.RawMessage(`{"from":"noreply@tenant.example"}`)}, env)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	m := provider.Message{To: "buyer@example.com", Subject: "s", Text: "t"}
	a := build(f.RoleARN, f.ExternalID)
	for range 2 {
		if _, err := a.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.AssumeRoleCalls.Load(); n != 1 {
		t.Fatalf("AssumeRole called %d times: the temporary credentials must be cached", n)
	}
	// The role refuses a wrong external id: auth_failed, nothing sent.
	before := len(f.Received())
	_, err := build(f.RoleARN, "someone-else").Send(context.Background(), m)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != provider.AuthFailed || len(f.Received()) != before {
		t.Fatalf("wrong external id: %v", err)
	}
}
