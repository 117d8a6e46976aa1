package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
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

// Every SMS records at intake how the network carries it, and keeps it through claim and send;
// email has none.
func TestSMSSizeIsRecordedAtIntake(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	c := s.API(key)
	ctx := context.Background()

	want := map[string]*message.SMSSize{}
	for _, tc := range []struct {
		req  message.Request
		size *message.SMSSize
	}{
		{message.Request{Channel: message.SMS, To: "+14155550123", Text: "Your code is 123456"}, &message.SMSSize{Encoding: message.GSM7, Units: 19, Segments: 1}},
		{message.Request{Channel: message.SMS, To: "+14155550123", Text: strings.Repeat("€", 81)}, &message.SMSSize{Encoding: message.GSM7, Units: 162, Segments: 2}},
		{message.Request{Channel: message.SMS, To: "+14155550123", Text: "Hi 👋 " + strings.Repeat("ж", 70)}, &message.SMSSize{Encoding: message.UCS2, Units: 76, Segments: 2}},
		{message.Request{Channel: message.Email, To: "a@example.com", Subject: "Hi", Text: "€ 👋"}, nil},
	} {
		acc, err := c.Send(ctx, tc.req, "")
		if err != nil {
			t.Fatal(err)
		}
		want[acc.ID] = tc.size
	}
	if counts := s.WaitAllFinal(30 * time.Second); counts[message.Sent] != len(want) {
		t.Fatalf("statuses %v, want all %d sent", counts, len(want))
	}
	for id, size := range want {
		m, err := c.Message(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if (m.SMS == nil) != (size == nil) || (size != nil && *m.SMS != *size) {
			t.Errorf("%s (%s %q): sms %+v, want %+v", id, m.Channel, m.Text, m.SMS, size)
		}
	}
}
