package message_test

import (
	"testing"
	"time"

	"github.com/logicspike/comms/pkg/message"
)

func TestObserveMovesForwardAndCountsTransitionsOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	type step struct {
		kind message.Status
		want message.Status
		adds message.Counts
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"delivered then opened then clicked", []step{
			{message.Delivered, message.Delivered, message.Counts{Delivered: 1}},
			{message.Opened, message.Delivered, message.Counts{Opened: 1}},
			{message.Clicked, message.Delivered, message.Counts{Clicked: 1}},
		}},
		{"duplicates count once", []step{
			{message.Delivered, message.Delivered, message.Counts{Delivered: 1}},
			{message.Delivered, message.Delivered, message.Counts{}},
			{message.Opened, message.Delivered, message.Counts{Opened: 1}},
			{message.Opened, message.Delivered, message.Counts{}},
		}},
		{"an open before its delivery implies it", []step{
			{message.Opened, message.Delivered, message.Counts{Delivered: 1, Opened: 1}},
			{message.Delivered, message.Delivered, message.Counts{}},
		}},
		{"a late delivery does not undo a bounce", []step{
			{message.Bounced, message.Bounced, message.Counts{Bounced: 1}},
			{message.Delivered, message.Bounced, message.Counts{}},
			{message.Sent, message.Bounced, message.Counts{}},
		}},
		{"a complaint after delivery", []step{
			{message.Delivered, message.Delivered, message.Counts{Delivered: 1}},
			{message.Complained, message.Complained, message.Counts{Complained: 1}},
			{message.Bounced, message.Complained, message.Counts{}},
		}},
		{"undelivered counts as failed; progress notes change nothing", []step{
			{message.Accepted, message.Sent, message.Counts{}},
			{message.Delayed, message.Sent, message.Counts{}},
			{message.Undelivered, message.Undelivered, message.Counts{Failed: 1}},
			{message.Failed, message.Undelivered, message.Counts{}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := message.Tracking{Status: message.Sent}
			for i, s := range c.steps {
				var got message.Counts
				tr, got = tr.Observe(s.kind, t0.Add(time.Duration(i)*time.Second))
				if tr.Status != s.want || got != s.adds {
					t.Fatalf("step %d (%s): status %s adds %+v, want %s %+v", i, s.kind, tr.Status, got, s.want, s.adds)
				}
			}
		})
	}
}

func TestRecipientKey(t *testing.T) {
	for in, want := range map[string]string{"Ada <Ada@Example.COM>": "ada@example.com", " ada@example.com ": "ada@example.com"} {
		if got := message.RecipientKey(message.Email, in); got != want {
			t.Errorf("RecipientKey(%q) = %q", in, got)
		}
	}
	if got := message.RecipientKey(message.SMS, "+14155550100"); got != "+14155550100" {
		t.Errorf("sms key %q", got)
	}
}
