package queue

import (
	"sort"
	"sync"
)

// offsetTracker follows fetched offsets per partition while they are processed concurrently, and
// says which offset is safe to commit: the highest one below which every fetched message is
// finished. Committing past an unfinished message would lose it on a crash.
type offsetTracker struct {
	mu    sync.Mutex
	parts map[topicPartition]*partition
}

// topicPartition names a partition.
type topicPartition struct {
	Topic     string
	Partition int
}

type partition struct {
	pending   []pendingOffset // fetch order, which is offset order
	committed int64           // highest offset safe to commit, -1 if none
	dirty     bool            // committed moved since the last Committable
}

type pendingOffset struct {
	offset int64
	done   bool
}

// newOffsetTracker returns an empty tracker.
func newOffsetTracker() *offsetTracker { return &offsetTracker{parts: map[topicPartition]*partition{}} }

// Add records a fetched offset as in flight.
func (t *offsetTracker) Add(tp topicPartition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[tp]
	if p == nil {
		p = &partition{committed: -1}
		t.parts[tp] = p
	}
	// After a rebalance the partition may be fetched again from an earlier committed offset:
	// start over, forgetting offsets that another member now owns.
	if n := len(p.pending); offset <= p.committed || n > 0 && offset <= p.pending[n-1].offset {
		p.pending = p.pending[:0]
		p.committed, p.dirty = -1, false
	}
	p.pending = append(p.pending, pendingOffset{offset: offset})
}

// Done marks an offset finished.
func (t *offsetTracker) Done(tp topicPartition, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[tp]
	if p == nil {
		return
	}
	i := sort.Search(len(p.pending), func(i int) bool { return p.pending[i].offset >= offset })
	if i == len(p.pending) || p.pending[i].offset != offset {
		return // forgotten by a rebalance
	}
	p.pending[i].done = true
	j := 0
	for j < len(p.pending) && p.pending[j].done {
		j++
	}
	if j > 0 {
		p.committed, p.dirty = p.pending[j-1].offset, true
		p.pending = append(p.pending[:0], p.pending[j:]...)
	}
}

// Committable returns, per partition whose safe offset moved since the last call, the offset of
// the last finished message with nothing unfinished before it.
func (t *offsetTracker) Committable() map[topicPartition]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[topicPartition]int64{}
	for tp, p := range t.parts {
		if p.dirty {
			out[tp] = p.committed
			p.dirty = false
		}
	}
	return out
}

// Failed offers offsets that Committable returned, and that did not reach the broker, again at
// the next call: otherwise an unmoving partition (the last messages before a shutdown) would
// never have its offset committed and would be redelivered. An offset a rebalance made the
// tracker forget stays forgotten.
func (t *offsetTracker) Failed(offsets map[topicPartition]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, off := range offsets {
		if p := t.parts[tp]; p != nil && p.committed >= off {
			p.dirty = true
		}
	}
}

// InFlight returns how many fetched offsets are not finished.
func (t *offsetTracker) InFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		for _, o := range p.pending {
			if !o.done {
				n++
			}
		}
	}
	return n
}
