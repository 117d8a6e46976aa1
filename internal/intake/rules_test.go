package intake

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logicspike/comms/internal/store"
	"github.com/logicspike/comms/pkg/message"
)

// writes records what record asked of the transaction, one line per call.
type writes []string

func (w *writes) Record(m store.NewMessage)      { *w = append(*w, "record") }
func (w *writes) CountUsage(_ string, units int) { *w = append(*w, "count "+strconv.Itoa(units)) }
func (w *writes) Enqueue(string)                 { *w = append(*w, "enqueue") }
func (w *writes) Schedule(string)                { *w = append(*w, "schedule") }

func TestWhatAnAcceptedMessageWrites(t *testing.T) {
	at := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name string
		m    store.NewMessage
		want string
	}{
		{"an email is one unit, queued now", store.NewMessage{Request: message.Request{Channel: message.Email}}, "record; count 1; enqueue"},
		{"an SMS counts its segments", store.NewMessage{Request: message.Request{Channel: message.SMS}, SMS: &message.SMSSize{Segments: 3}}, "record; count 3; enqueue"},
		{"an SMS of no known segments is one", store.NewMessage{Request: message.Request{Channel: message.SMS}, SMS: &message.SMSSize{}}, "record; count 1; enqueue"},
		{"a message for later is scheduled, not queued", store.NewMessage{Request: message.Request{Channel: message.Email}, SendAt: &at}, "record; count 1; schedule"},
	} {
		var got writes
		record(&got, tc.m)
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, strings.Join(got, "; "), tc.want)
		}
	}
}
