package fakeprovider_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/logicspike/comms/internal/testing/fakeprovider"
	"github.com/logicspike/comms/pkg/message"
	"github.com/logicspike/comms/pkg/provider"
	"github.com/logicspike/comms/pkg/provider/webpush"
)

// With DecryptLater the push service answers each push after its checks, and the browsers decrypt
// what they were sent when Received is called: every push is still decrypted and shown with the
// time it was accepted, and a push a browser cannot decrypt is shown as such.
func TestWebPushDecryptsLater(t *testing.T) {
	wp := fakeprovider.NewWebPush()
	defer wp.Close()
	wp.DecryptLater = true
	creds, _ := json.Marshal(map[string]string{"subject": "mailto:ops@acme.example"})
	a, err := webpush.New(provider.Config{ID: "prv_wp", Type: webpush.Type, Channel: message.Push, Credentials: creds}, provider.Env{AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	good, bad := wp.Subscribe(""), wp.Subscribe("")
	send := func(id string, s fakeprovider.Subscription, auth string) {
		t.Helper()
		if _, err := a.Send(context.Background(), provider.Message{ID: id, To: s.Endpoint, Push: &message.PushContent{Title: "T " + id, Body: "B"},
			Device: &provider.Device{P256DH: s.Keys.P256DH, Auth: auth}}); err != nil {
			t.Fatalf("send %s: %v", id, err)
		}
	}
	send("msg_1", good, good.Keys.Auth)
	send("msg_2", bad, good.Keys.Auth) // another subscription's auth secret: its browser cannot decrypt it
	if n := wp.Pushes(); n != 2 {
		t.Fatalf("%d pushes accepted, want 2", n)
	}
	got := wp.Received()
	if len(got) != 2 || got[0].MessageID != "msg_1" || got[0].Subject != "T msg_1" || got[0].At.IsZero() || got[0].Extra["error"] != "" {
		t.Fatalf("received %+v", got)
	}
	if got[1].MessageID != "" || got[1].Extra["error"] == "" {
		t.Fatalf("an undecryptable push was received as %+v", got[1])
	}
	if n := wp.Pushes(); n != 2 || len(wp.Received()) != 2 {
		t.Fatalf("after decrypting: %d pushes, %d received", n, len(wp.Received()))
	}
}
