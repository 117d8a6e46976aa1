package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// Every SMS records at intake how the network carries it, and keeps it through claim and send;
// email has none.
func TestSMSSizeIsRecordedAtIntake(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tid, key := s.Tenant()

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
		want[s.Send(key, "", tc.req)] = tc.size
	}
	if counts := s.WaitAllFinal(30 * time.Second); counts[message.Sent] != len(want) {
		t.Fatalf("statuses %v, want all %d sent", counts, len(want))
	}
	for id, size := range want {
		m, err := s.Store.GetMessage(context.Background(), tid, id)
		if err != nil {
			t.Fatal(err)
		}
		if (m.SMS == nil) != (size == nil) || (size != nil && *m.SMS != *size) {
			t.Errorf("%s (%s %q): sms %+v, want %+v", id, m.Channel, m.Text, m.SMS, size)
		}
	}
}
