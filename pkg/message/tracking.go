package message

import "time"

// Event kinds that providers report beside statuses: engagement, which never moves a message's
// status backwards, and progress notes that change nothing.
const (
	Opened   Status = "opened"
	Clicked  Status = "clicked"
	Accepted Status = "accepted" // the provider queued or is sending it (Twilio queued, SES Send)
	Delayed  Status = "delayed"  // delivery is delayed; the provider keeps trying
)

// Tracking is the part of a message that delivery events change.
type Tracking struct {
	Status      Status
	DeliveredAt *time.Time
	OpenedAt    *time.Time
	ClickedAt   *time.Time
}

// Counts are the analytics a transition adds: each is 0 or 1.
type Counts struct {
	Delivered, Opened, Clicked, Bounced, Complained, Failed int
}

// Add adds c to n.
func (n *Counts) Add(c Counts) {
	n.Delivered += c.Delivered
	n.Opened += c.Opened
	n.Clicked += c.Clicked
	n.Bounced += c.Bounced
	n.Complained += c.Complained
	n.Failed += c.Failed
}

// Zero reports whether c counts nothing.
func (c Counts) Zero() bool { return c == Counts{} }

// Observe applies one provider event of kind at the provider's time at, and returns the new state
// and what it adds to the analytics. The rules make duplicates and any arrival order harmless:
//   - the status only moves to a higher rank, so a late "delivered" never undoes a bounce and a
//     late "sent" never undoes "delivered";
//   - each counter counts a transition (into delivered, into a terminal status, the first open,
//     the first click), so an event seen twice counts once;
//   - an open or a click proves delivery: a message still "sent" moves to delivered, and the
//     delivery callback that arrives after it counts nothing more.
func (t Tracking) Observe(kind Status, at time.Time) (Tracking, Counts) {
	var c Counts
	switch kind {
	case Opened, Clicked:
		t, c = t.advance(Delivered, at)
		if kind == Opened && t.OpenedAt == nil {
			t.OpenedAt, c.Opened = &at, 1
		}
		if kind == Clicked && t.ClickedAt == nil {
			t.ClickedAt, c.Clicked = &at, 1
		}
	case Delivered, Failed, Undelivered, Bounced, Complained:
		t, c = t.advance(kind, at)
	}
	return t, c
}

func (t Tracking) advance(to Status, at time.Time) (Tracking, Counts) {
	var c Counts
	if to.Rank() <= t.Status.Rank() {
		return t, c
	}
	t.Status = to
	switch to {
	case Delivered:
		c.Delivered = 1
		t.DeliveredAt = &at
	case Bounced:
		c.Bounced = 1
	case Complained:
		c.Complained = 1
	case Failed, Undelivered:
		c.Failed = 1
	}
	return t, c
}
