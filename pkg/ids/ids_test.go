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

func TestSortableIDsCarryTheirTime(t *testing.T) {
	for _, at := range []time.Time{time.Now(), time.Date(2026, 9, 1, 12, 0, 0, 123e6, time.UTC), time.UnixMilli(0)} {
		id := NewSortableAt(Message, at)
		got, ok := SortableTime(id, Message)
		if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
			t.Errorf("%s: %v %v, want %v", id, got, ok, at.Truncate(time.Millisecond))
		}
	}
	earlier, later := NewSortableAt(Message, time.Now().Add(-time.Hour)), NewSortable(Message)
	if earlier >= later {
		t.Errorf("an id made an hour earlier sorts after: %s >= %s", earlier, later)
	}
	for _, id := range []string{"msg_short", "ten_" + Random(22), "msg_" + Random(21) + "-"} {
		if _, ok := SortableTime(id, Message); ok {
			t.Errorf("%s read as a sortable message id", id)
		}
	}
}
