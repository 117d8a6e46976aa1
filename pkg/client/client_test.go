package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/client"
	"github.com/logicspike/comms/pkg/message"
)

// The client against the real API: a tenant set up through the admin calls sends, repeats
// idempotently, reads back, and gets each refusal as an *Error naming the field.
func TestClientAgainstTheAPI(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	ctx := context.Background()
	admin := s.API(s.AdminKey)

	ten, err := admin.CreateTenant(ctx, "client test")
	if err != nil || ten.ID == "" {
		t.Fatalf("create tenant: %+v, %v", ten, err)
	}
	key, err := admin.CreateTenantKey(ctx, ten.ID, "client")
	if err != nil || key.Secret == "" || key.TenantID != ten.ID {
		t.Fatalf("create key: %+v, %v", key, err)
	}
	c := admin.WithKey(key.Secret)

	req := message.Request{Channel: message.SMS, To: "+14155550123", Text: "Your code is 123456"}
	first, err := c.Send(ctx, req, "client-order-1")
	if err != nil || first.ID == "" || first.Status != message.Queued {
		t.Fatalf("send: %+v, %v", first, err)
	}
	again, err := c.Send(ctx, req, "client-order-1")
	if err != nil || again.ID != first.ID {
		t.Fatalf("idempotent repeat: %+v, %v; want %s", again, err, first.ID)
	}
	m, err := c.Message(ctx, first.ID)
	if err != nil || m.ID != first.ID || m.To != req.To || m.TenantID != ten.ID {
		t.Fatalf("get: %+v, %v", m, err)
	}
	page, err := c.Messages(ctx, url.Values{"limit": {"10"}})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != first.ID {
		t.Fatalf("list: %+v, %v", page, err)
	}

	_, err = c.Send(ctx, message.Request{Channel: message.SMS, To: "not a number"}, "")
	var perr *client.Error
	if !errors.As(err, &perr) || perr.Status != http.StatusUnprocessableEntity || len(perr.Errors) == 0 || perr.Errors[0].Field == "" {
		t.Fatalf("invalid send: %v", err)
	}
	if _, err := c.Message(ctx, "msg_nope"); client.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("unknown message: %v", err)
	}
	if _, err := c.CreateTenant(ctx, "not allowed"); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("tenant key on an admin call: %v", err)
	}
}
