package ids

import (
	"testing"
	"time"
)

func TestNewIsPrefixedUniqueAndRecognised(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New(Message)
		if !HasPrefix(id, Message) || HasPrefix(id, Tenant) || len(id) != len("msg_")+22 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"msg_", "msg", "msg_abc-def", "msg_' OR 1=1", "ten_abc"} {
		if HasPrefix(bad, Message) {
			t.Errorf("HasPrefix(%q) = true", bad)
		}
	}
}

func TestNewSortableOrdersByTime(t *testing.T) {
	a := NewSortable(Message)
	time.Sleep(2 * time.Millisecond)
	b := NewSortable(Message)
	if a >= b || !HasPrefix(a, Message) || len(a) != len(New(Message)) {
		t.Fatalf("%q then %q: want sortable, well-formed ids of the usual length", a, b)
	}
	// The time prefix is fixed-width and sorts bytewise like the instants it encodes.
	early, late := timePrefix(time.UnixMilli(61)), timePrefix(time.UnixMilli(62))
	if early >= late || len(early) != 8 {
		t.Fatalf("%q !< %q", early, late)
	}
}
