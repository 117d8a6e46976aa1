package webhooks

import (
	"testing"
	"time"
)

// A delivery is filed under its event's time, the same for every copy of the event, unless that
// time is far from the event's publication (a provider's clock): then under the publication's,
// whose week's partition exists, and the delivery says so (the eraser looks for it in every week).
func TestADeliveryIsFiledUnderItsEventsTime(t *testing.T) {
	published := time.Date(2026, 12, 7, 0, 0, 30, 123456789, time.UTC)
	for _, c := range []struct {
		name        string
		event, want time.Time
		late        bool
	}{
		{"a moment before", published.Add(-30 * time.Second), published.Add(-30 * time.Second).Truncate(time.Microsecond), false},
		{"a late callback, six days", published.Add(-6 * 24 * time.Hour), published.Add(-6 * 24 * time.Hour).Truncate(time.Microsecond), false},
		{"eight days before", published.Add(-8 * 24 * time.Hour), published.Truncate(time.Microsecond), true},
		{"two hours ahead", published.Add(2 * time.Hour), published.Truncate(time.Microsecond), true},
		{"no time", time.Time{}, published.Truncate(time.Microsecond), true},
	} {
		if got, late := deliveryTime(c.event, published); !got.Equal(c.want) || late != c.late {
			t.Errorf("%s: %v (filed late %t), want %v (%t)", c.name, got, late, c.want, c.late)
		}
	}
}
