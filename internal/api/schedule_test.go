package api_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/intake"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/internal/testing/testenv"
	"github.com/logicspike/comms/pkg/message"
)

func at(d time.Duration) *time.Time {
	t := time.Now().Add(d).UTC()
	return &t
}

// A scheduled message waits as scheduled, goes out at its time and not before; one canceled
// before then never goes out.
func TestScheduledSendGoesAtItsTimeOrIsCanceled(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()

	var acc intake.Accepted
	resp := s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550123", Text: "later", SendAt: at(4 * time.Second)}, nil, &acc) // far enough ahead that a loaded machine checks before it
	if resp.StatusCode != 202 || acc.Status != message.Scheduled || acc.ScheduledAt == nil {
		t.Fatalf("scheduled send: %d %+v", resp.StatusCode, acc)
	}
	var canceledAcc intake.Accepted
	s.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550124", Text: "never", SendAt: at(time.Hour)}, nil, &canceledAcc)
	past := s.Send(key, "", message.Request{Channel: message.SMS, To: "+14155550125", Text: "past means now", SendAt: at(-time.Hour)})

	var m message.Message
	mustDo(t, s, 200, "GET", "/v1/messages/"+acc.ID, key, nil, &m)
	if m.Status != message.Scheduled || m.ScheduledAt == nil || s.Recorder.Count(acc.ID) != 0 {
		t.Fatalf("before its time: %+v, sent %d times", m, s.Recorder.Count(acc.ID))
	}
	var cm message.Message
	mustDo(t, s, 200, "POST", "/v1/messages/"+canceledAcc.ID+"/cancel", key, nil, &cm)
	if cm.Status != message.Canceled || cm.Events[len(cm.Events)-1].Status != message.Canceled {
		t.Fatalf("canceled: %+v", cm)
	}
	mustDo(t, s, http.StatusConflict, "POST", "/v1/messages/"+canceledAcc.ID+"/cancel", key, nil, nil)
	mustDo(t, s, http.StatusNotFound, "POST", "/v1/messages/msg_nope/cancel", key, nil, nil)

	s.WaitAllFinal(30 * time.Second)
	m = message.Message{}
	mustDo(t, s, 200, "GET", "/v1/messages/"+acc.ID, key, nil, &m)
	if m.Status != message.Sent || m.SentAt == nil || m.SentAt.Before(*m.ScheduledAt) || s.Recorder.Count(acc.ID) != 1 {
		t.Fatalf("after its time: %+v, sent %d times", m, s.Recorder.Count(acc.ID))
	}
	if got := []message.Status{m.Events[0].Status, m.Events[1].Status}; got[0] != message.Scheduled || got[1] != message.Queued {
		t.Errorf("events %v, want scheduled then queued first", got)
	}
	var pm message.Message
	mustDo(t, s, 200, "GET", "/v1/messages/"+past, key, nil, &pm)
	if pm.ScheduledAt != nil || pm.Status != message.Sent {
		t.Errorf("send_at in the past: %+v", pm)
	}
	if s.Recorder.Count(canceledAcc.ID) != 0 {
		t.Error("the canceled message was sent")
	}
	mustDo(t, s, http.StatusConflict, "POST", "/v1/messages/"+acc.ID+"/cancel", key, nil, nil)
	if f := problemFields(t, s, 422, "POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550123", Text: "x", SendAt: at(31 * 24 * time.Hour)}); f["send_at"] == "" {
		t.Errorf("31 days ahead: %v", f)
	}
}

// Cancels racing the due time: every message ends exactly one of canceled (its cancel answered
// 200, never sent) or sent once (its cancel answered 409).
func TestCancelRacingTheDueTime(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	_, key := s.Tenant()
	due := at(700 * time.Millisecond)
	b := message.BatchRequest{SendAt: due}
	for range 200 {
		b.Messages = append(b.Messages, item(message.Request{Channel: message.SMS, To: "+14155550123", Text: "race"}))
	}
	res := sendBatch(t, s, key, "", b, http.StatusOK)
	time.Sleep(time.Until(due.Add(-50 * time.Millisecond)))
	codes := make([]int, len(res.Items))
	var wg sync.WaitGroup
	for i, it := range res.Items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%20) * 5 * time.Millisecond) // spread across the due time
			codes[i] = s.Do("POST", "/v1/messages/"+it.ID+"/cancel", key, nil, nil, nil).StatusCode
		}()
	}
	wg.Wait()
	s.WaitAllFinal(30 * time.Second)
	won := map[int]int{}
	for i, it := range res.Items {
		var m message.Message
		mustDo(t, s, 200, "GET", "/v1/messages/"+it.ID, key, nil, &m)
		sent := s.Recorder.Count(it.ID)
		switch {
		case codes[i] == 200 && m.Status == message.Canceled && sent == 0:
		case codes[i] == 409 && m.Status == message.Sent && sent == 1:
		default:
			t.Fatalf("%s: cancel answered %d, status %s, sent %d times", it.ID, codes[i], m.Status, sent)
		}
		won[codes[i]]++
	}
	t.Logf("canceled %d, sent %d", won[200], won[409])
}

// Scheduled messages live in PostgreSQL: the API process that accepted them and its worker
// are killed before they are due, and another pair sends every one, none early.
func TestScheduledSendsSurviveARestart(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	var key string
	var ids []string
	due := at(1500 * time.Millisecond)
	t.Run("first process", func(t *testing.T) {
		s1 := stacktest.Start(t, stacktest.Options{Pool: pool})
		defer s1.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond}).Kill()
		_, key = s1.Tenant()
		for range 20 {
			var acc intake.Accepted
			s1.Do("POST", "/v1/messages", key, message.Request{Channel: message.SMS, To: "+14155550123", Text: "survives", SendAt: due}, nil, &acc)
			ids = append(ids, acc.ID)
		}
	})
	if time.Now().After(*due) {
		t.Skip("the first process outlived the due time on this machine; nothing was shown")
	}
	s2 := stacktest.Start(t, stacktest.Options{Pool: pool})
	s2.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	s2.WaitAllFinal(30 * time.Second)
	for _, id := range ids {
		var m message.Message
		mustDo(t, s2, 200, "GET", "/v1/messages/"+id, key, nil, &m)
		if m.Status != message.Sent || m.SentAt.Before(*due) || s2.Recorder.Count(id) != 1 {
			t.Fatalf("%s: %s at %v (due %v), sent %d times", id, m.Status, m.SentAt, due, s2.Recorder.Count(id))
		}
	}
}
