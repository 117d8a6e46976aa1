package inbox

import "testing"

// A stream that falls streamBuffer arrivals behind loses the ones after, and is owed a Resync,
// which it gets as the next arrival once it has room; arrivals for another inbox never reach it;
// Close ends every stream and refuses new ones.
func TestAStreamTooFarBehindIsToldToReload(t *testing.T) {
	h := NewHub(nil, "", nil)
	r := Reader{TenantID: "ten_a", RecipientID: "u_1"}
	arrivals, done, ok := h.Open(r)
	if !ok {
		t.Fatal("open")
	}
	defer done()
	h.deliver("ten_a u_2 msg_other")
	h.deliver("ten_b u_1 msg_other")
	for i := range streamBuffer + 1 {
		h.deliver("ten_a u_1 msg_" + string(rune('a'+i%26)))
	}
	for range streamBuffer {
		if a := <-arrivals; a.Resync || a.MessageID == "msg_other" {
			t.Fatalf("a queued arrival: %+v", a)
		}
	}
	if len(arrivals) != 0 {
		t.Fatalf("%d arrivals past the buffer were queued", len(arrivals))
	}
	h.deliver("ten_a u_1 msg_next")
	if a := <-arrivals; !a.Resync {
		t.Fatalf("after a dropped arrival the stream got %+v, want a resync", a)
	}
	h.deliver("ten_a u_1 msg_after")
	if a := <-arrivals; a.Resync || a.MessageID != "msg_after" {
		t.Fatalf("after the resync: %+v", a)
	}
	h.resyncAll()
	if a := <-arrivals; !a.Resync {
		t.Fatalf("after a gap in the notices: %+v", a)
	}
	if h.Streams() != 1 {
		t.Fatalf("%d streams open", h.Streams())
	}
	h.Close()
	if _, open := <-arrivals; open {
		t.Fatal("the stream stayed open after Close")
	}
	if _, _, ok := h.Open(r); ok {
		t.Fatal("a stream opened after Close")
	}
}
