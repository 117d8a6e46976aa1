package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/api"
	"github.com/logicspike/comms/internal/dispatch/worker"
	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/internal/testing/stacktest"
	"github.com/logicspike/comms/pkg/message"
)

// Erasing an address also erases the in_app and push messages of the tenant's profiles holding
// it (addressed to the profile's id, they carry the person's content) and the profiles' push
// devices; another person's inbox is untouched.
func TestErasureReachesTheProfilesInboxAndPushMessages(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	s.StartWorker(worker.Config{CommitInterval: 20 * time.Millisecond})
	tid, key := s.Tenant()
	ctx := context.Background()
	const victim, bystander = "+14155550133", "+14155550134"
	for id, phone := range map[string]string{"u_1": victim, "u_2": bystander} {
		if resp := s.Do("PUT", "/v1/recipients/"+id, key, map[string]any{"phone": phone}, nil, nil); resp.StatusCode != 201 {
			t.Fatalf("profile %s: %d", id, resp.StatusCode)
		}
	}
	push := fakeprovider.NewWebPush()
	t.Cleanup(push.Close)
	if resp := s.Do("POST", "/v1/recipients/u_1/devices", key, map[string]any{"platform": "webpush", "subscription": push.Subscribe("")}, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("device: %d", resp.StatusCode)
	}
	const secret = "Ada, your code is 333333"
	inbox := s.Send(key, "", message.Request{Channel: message.InApp, Recipient: "u_1", InApp: &message.InAppContent{Title: "Code", Body: secret}})
	pushed := s.Send(key, "", message.Request{Channel: message.Push, Recipient: "u_1", Push: &message.PushContent{Title: "Code", Body: secret}})
	theirs := s.Send(key, "", message.Request{Channel: message.InApp, Recipient: "u_2", InApp: &message.InAppContent{Title: "Hello", Body: "for Bob"}})
	s.WaitAllFinal(30 * time.Second)

	var er api.Erasure
	if resp := s.Do("POST", "/v1/erasures", key, map[string]any{"recipient": victim}, nil, &er); resp.StatusCode != 202 {
		t.Fatalf("erase: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); er.Status != domain.ErasureDone; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("erasure still %s after 30 s", er.Status)
		}
		s.Do("GET", "/v1/erasures/"+er.ID, key, nil, nil, &er)
	}
	if er.Counts.Messages != 2 {
		t.Fatalf("messages erased: %d, want the inbox and push messages of u_1", er.Counts.Messages)
	}
	for _, id := range []string{inbox, pushed} {
		m, err := s.Store.GetMessage(ctx, tid, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.ErasedAt == nil || m.InApp != nil || m.Push != nil || m.Subject != "" || m.Text != "" {
			t.Fatalf("%s (%s) after the erasure: erased %v, in_app %+v, push %+v, %q %q", id, m.Channel, m.ErasedAt, m.InApp, m.Push, m.Subject, m.Text)
		}
	}
	if found := whereFound(t, s, "333333"); len(found) > 0 {
		t.Fatalf("the erased content is still in %v", found)
	}
	var devices struct{ Data []api.Device }
	if resp := s.Do("GET", "/v1/recipients/u_1/devices", key, nil, nil, &devices); resp.StatusCode != 200 || len(devices.Data) != 0 {
		t.Fatalf("u_1's devices after the erasure: %d %+v", resp.StatusCode, devices.Data)
	}
	if m, err := s.Store.GetMessage(ctx, tid, theirs); err != nil || m.ErasedAt != nil || m.InApp == nil || m.InApp.Body != "for Bob" {
		t.Fatalf("another person's inbox message: %+v %v", m.InApp, err)
	}
}
