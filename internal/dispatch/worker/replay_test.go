package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
)

// Ops replay dead letters through /admin/dlq: a dry run counts and changes nothing; a filtered
// replay re-sends exactly the selected messages; replaying again sends nothing more; every
// replay is in the audit log.
func TestDeadLetterReplayIsFilteredIdempotentAndAudited(t *testing.T) {
	t.Parallel()
	s, tw := twilioStack(t)
	cfg := retrying
	cfg.BreakerCooldown = 50 * time.Millisecond // the outage opens the breaker; it must recover for the replay
	s.StartWorker(cfg)
	tid, key := ownOnly(t, s)
	otherTid, otherKey := ownOnly(t, s)
	for _, id := range []string{tid, otherTid} {
		if _, err := s.Pool.Exec(context.Background(), `UPDATE communication.tenants SET max_attempts = 2 WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
	addTwilio(t, s, key, tw, "tw", "+14155550001", 1)
	addTwilio(t, s, otherKey, tw, "tw", "+14155550002", 1)
	tw.FailAll(provider.ProviderUnavailable) // an outage: everything runs out of retries
	mine := []string{s.Send(key, "", sms("a")), s.Send(key, "", sms("b"))}
	theirs := s.Send(otherKey, "", sms("c"))
	s.WaitAllFinal(30 * time.Second)
	for _, id := range append(mine, theirs) {
		if m := getMessage(t, s, map[bool]string{true: tid, false: otherTid}[id != theirs], id); m.Status != message.Failed {
			t.Fatalf("%s: %s, want failed", id, m.Status)
		}
	}
	tw.FailAll("") // the outage is over

	var list struct {
		Data []api.DeadLetter `json:"data"`
	}
	s.Do("GET", "/admin/dlq?tenant_id="+tid+"&provider=twilio&error_code=provider_unavailable", s.AdminKey, nil, nil, &list)
	if len(list.Data) != 2 {
		t.Fatalf("listed %d dead letters for the tenant, want 2", len(list.Data))
	}
	var one api.DeadLetter
	s.Do("GET", "/admin/dlq/"+itoa(list.Data[0].ID), s.AdminKey, nil, nil, &one)
	if one.MessageID == "" || one.Attempts != 2 || !strings.Contains(string(one.Envelope), one.MessageID) {
		t.Fatalf("show: %+v", one)
	}

	replay := func(body map[string]any) api.Replay {
		t.Helper()
		var rep api.Replay
		if resp := s.Do("POST", "/admin/dlq/replay", s.AdminKey, body, nil, &rep); resp.StatusCode != 200 {
			t.Fatalf("replay %v: %d", body, resp.StatusCode)
		}
		return rep
	}
	if resp := s.Do("POST", "/admin/dlq/replay", s.AdminKey, map[string]any{}, nil, nil); resp.StatusCode != 422 {
		t.Fatalf("a replay with no filter and no all: %d", resp.StatusCode)
	}
	filter := map[string]any{"tenant_id": tid, "error_code": "provider_unavailable"}
	before := len(tw.Received())
	if rep := replay(map[string]any{"filter": filter, "dry_run": true}); rep.Matched != 2 || rep.Replayed != 0 {
		t.Fatalf("dry run: %+v", rep)
	}
	time.Sleep(200 * time.Millisecond)
	if len(tw.Received()) != before || getMessage(t, s, tid, mine[0]).Status != message.Failed {
		t.Fatal("a dry run changed something")
	}
	if rep := replay(map[string]any{"filter": filter}); rep.Matched != 2 || rep.Replayed != 2 {
		t.Fatalf("replay: %+v", rep)
	}
	if rep := replay(map[string]any{"filter": filter}); rep.Matched != 0 || rep.Replayed != 0 {
		t.Fatalf("second replay: %+v", rep)
	}
	s.WaitAllFinal(30 * time.Second)
	for _, id := range mine {
		m := getMessage(t, s, tid, id)
		if m.Status != message.Sent {
			t.Fatalf("replayed %s: %s", id, m.Status)
		}
		var n int
		for _, r := range tw.Received() {
			if r.ProviderMessageID == m.ProviderMessageID {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("replayed message reached the provider %d times", n)
		}
	}
	if m := getMessage(t, s, otherTid, theirs); m.Status != message.Failed {
		t.Fatal("the filter replayed another tenant's message")
	}
	var audit struct {
		Data []api.Replay `json:"data"`
	}
	s.Do("GET", "/admin/dlq/replays", s.AdminKey, nil, nil, &audit)
	if len(audit.Data) != 3 || !strings.HasPrefix(audit.Data[0].Actor, "admin key key_") {
		t.Fatalf("audit log: %+v", audit.Data)
	}
	// The log shows each replay's filter as it was given.
	if f := audit.Data[0].Filter; f == nil || f.TenantID != tid || f.ErrorCode != "provider_unavailable" {
		t.Fatalf("the replay log lost the filter: %+v", f)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
