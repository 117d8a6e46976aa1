package queue

import "testing"

func TestTrackerNeverCommitsPastUnfinished(t *testing.T) {
	tp := topicPartition{Topic: "t", Partition: 0}
	tests := []struct {
		name string
		add  []int64
		done []int64
		want int64 // -1: nothing committable
	}{
		{"nothing done", []int64{0, 1, 2}, nil, -1},
		{"in order", []int64{0, 1, 2}, []int64{0, 1}, 1},
		{"gap holds back", []int64{0, 1, 2, 3}, []int64{1, 2, 3}, -1},
		{"gap filled", []int64{0, 1, 2, 3}, []int64{3, 2, 0, 1}, 3},
		{"sparse offsets", []int64{10, 15, 16}, []int64{10, 16}, 10},
		{"rebalance refetch forgets old", []int64{5, 6, 7, 5}, []int64{6, 7}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newOffsetTracker()
			for _, o := range tc.add {
				tr.Add(tp, o)
			}
			for _, o := range tc.done {
				tr.Done(tp, o)
			}
			got, ok := tr.Committable()[tp]
			if !ok {
				got = -1
			}
			if got != tc.want {
				t.Fatalf("committable = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTrackerReportsEachAdvanceOnce(t *testing.T) {
	tr := newOffsetTracker()
	tp := topicPartition{Topic: "t"}
	tr.Add(tp, 0)
	tr.Done(tp, 0)
	if c := tr.Committable(); c[tp] != 0 || len(c) != 1 {
		t.Fatalf("first: %v", c)
	}
	if c := tr.Committable(); len(c) != 0 {
		t.Fatalf("second call reported again: %v", c)
	}
	if tr.InFlight() != 0 {
		t.Fatal("in flight after done")
	}
}

// A commit that fails (a broker timeout, or the shutdown cancelling it midway) is offered again,
// even though the partition does not move: the last offsets before a shutdown are committed.
func TestTrackerOffersAFailedCommitAgain(t *testing.T) {
	tr := newOffsetTracker()
	tp := topicPartition{Topic: "t"}
	for off := range int64(3) {
		tr.Add(tp, off)
		tr.Done(tp, off)
	}
	c := tr.Committable()
	tr.Failed(c)
	if again := tr.Committable(); again[tp] != 2 {
		t.Fatalf("after a failed commit: %v, want offset 2 again", again)
	}
	if again := tr.Committable(); len(again) != 0 {
		t.Fatalf("offered twice after one failure: %v", again)
	}
	// A rebalance that restarts the partition forgets what the failed commit carried.
	tr.Add(tp, 0)
	tr.Failed(c)
	if again := tr.Committable(); len(again) != 0 {
		t.Fatalf("a forgotten offset offered again: %v", again)
	}
}
