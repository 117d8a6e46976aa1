package store

import (
	"reflect"
	"testing"
)

func TestWhereNumbersPlaceholdersInOrder(t *testing.T) {
	w := &where{}
	w.add("tenant_id = ?", "ten_1")
	w.addIf(false, "status = ?", "sent")
	w.addIf(true, "channel = ?", "sms")
	w.add("(created_at, id) < (?, ?)", "2026-12-01", "msg_9")
	w.add("replayed_at IS NULL")
	limit := w.arg(50)
	if got, want := w.sql(), "tenant_id = $1 AND channel = $2 AND (created_at, id) < ($3, $4) AND replayed_at IS NULL"; got != want {
		t.Errorf("sql %q, want %q", got, want)
	}
	if limit != "$5" || !reflect.DeepEqual(w.args, []any{"ten_1", "sms", "2026-12-01", "msg_9", 50}) {
		t.Errorf("limit %s, args %v", limit, w.args)
	}
	if (&where{}).sql() != "true" {
		t.Error("no conditions must select everything")
	}
}
