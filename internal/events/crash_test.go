package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/event"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Provider callbacks arrive (each twice, as Twilio retries) while the callback receiver and the
// worker (whose publisher takes the outbox) are killed mid-run and replaced: every message has
// exactly one delivered transition, and comms.events carries exactly one delivered event id per
// message, each one a transition that happened.
func TestCallbacksAcrossCrashesMakeOneEventPerTransition(t *testing.T) {
	t.Parallel()
	tw := fakeprovider.NewTwilio()
	defer tw.Close()
	s := stacktest.Start(t, stacktest.Options{Env: provider.Env{TwilioBaseURL: tw.URL}})
	w := s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	hook := s.StartWebhook()
	tenant, key := s.Tenant()
	cfgID := s.TwilioConfig(key, tw)
	const n = 100
	type sent struct{ id, to, sid string }
	msgs := make([]sent, n)
	for i := range msgs {
		msgs[i].to = fmt.Sprintf("+1415555%04d", i)
		msgs[i].id = s.Send(key, "", message.Request{Channel: message.SMS, To: msgs[i].to, Text: "code 1234"})
	}
	s.WaitAllFinal(30 * time.Second)
	for i := range msgs {
		var m message.Message
		s.Do("GET", "/v1/messages/"+msgs[i].id, key, nil, nil, &m)
		msgs[i].sid = m.ProviderMessageID
	}

	// Every callback twice, 8 at a time; a failed post is what Twilio retries later.
	post := func(hookURL string, stopAfter int64) {
		var posted atomic.Int64
		var wg sync.WaitGroup
		jobs := make(chan sent)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range jobs {
					for range 2 {
						resp, err := fakeprovider.PostTwilioCallback(s.Client, hookURL+"/webhooks/twilio/"+cfgID, tw.AuthToken,
							fakeprovider.TwilioStatus(tw.AccountSID, m.sid, m.to, "delivered", ""))
						if err == nil {
							resp.Body.Close()
						}
						posted.Add(1)
					}
				}
			}()
		}
		for _, m := range msgs {
			if stopAfter > 0 && posted.Load() >= stopAfter {
				break
			}
			jobs <- m
		}
		close(jobs)
		wg.Wait()
	}
	post(hook.URL, n) // about half the messages' callbacks
	hook.Kill()
	w.Kill()
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	post(s.StartWebhook().URL, 0) // every callback again, to the replacements

	ctx := context.Background()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	transitions := map[string]string{} // event id → message id, for delivered transitions
	waitFor("every message delivered", func() bool {
		rows, err := s.Pool.Query(ctx, `SELECT id, message_id FROM communication.message_events WHERE tenant_id = $1 AND status = 'delivered'`, tenant)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		clear(transitions)
		for rows.Next() {
			var id int64
			var msg string
			if err := rows.Scan(&id, &msg); err != nil {
				t.Fatal(err)
			}
			transitions[event.ID(id)] = msg
		}
		return len(transitions) >= n
	})
	perMessage := map[string]int{}
	for _, msg := range transitions {
		perMessage[msg]++
	}
	for _, m := range msgs {
		if perMessage[m.id] != 1 {
			t.Errorf("message %s has %d delivered transitions", m.id, perMessage[m.id])
		}
	}

	r := queue.NewGroupReader(s.Brokers, "crash-test", queue.TopicEvents)
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	published := map[string]string{} // delivered event id → subject
	for len(published) < n {
		rec, err := r.Fetch(rctx)
		if err != nil {
			t.Fatalf("after %d delivered events: %v", len(published), err)
		}
		var ev event.Event
		if err := json.Unmarshal(rec.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != event.Delivered {
			continue
		}
		if msg, ok := transitions[ev.ID]; !ok || msg != ev.Subject {
			t.Fatalf("published %s for %s, which is no delivered transition", ev.ID, ev.Subject)
		}
		published[ev.ID] = ev.Subject
	}
	bySubject := map[string]int{}
	for _, subj := range published {
		bySubject[subj]++
	}
	for _, m := range msgs {
		if bySubject[m.id] != 1 {
			t.Errorf("message %s: %d distinct delivered events", m.id, bySubject[m.id])
		}
	}
}
