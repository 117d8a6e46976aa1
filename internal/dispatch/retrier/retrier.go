// Package retrier holds intents on the retry topics (comms.send.retry.<tier>) until they are due,
// then puts them back on comms.send. Waiting happens here, off the dispatch path, so a message
// waiting for its next attempt never holds up its partition of comms.send.
//
// Each tier has its own consumer and its own bound on waiting intents, so a backlog of hour-long
// waits cannot starve the five-second tier. An intent's offset is committed only after it is back
// on comms.send; a crash redelivers the waiting ones, and the worker's claim (which refuses a
// message that is not queued, or not yet due) absorbs any duplicate.
package retrier

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/logicspike/comms/internal/batch"
	"github.com/logicspike/comms/internal/platform/retry"
	"github.com/logicspike/comms/internal/queue"
)

// Config tunes the retrier.
type Config struct {
	Brokers        []string
	Group          string        // consumer group; default comms-retrier
	MaxWaiting     int           // intents held per tier at once; default 10,000
	CommitInterval time.Duration // default 200ms
}

// Retrier moves due intents from the retry tiers back to comms.send.
type Retrier struct {
	cfg Config
	out *queue.Producer
	// due gathers intents that come due together into one produce: an open breaker can send a
	// tenant's whole backlog through the tiers, hundreds a second.
	due *batch.Batcher[queue.Envelope, batch.Done]
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	lists map[*waitList]bool // every tier's waiting intents, for Release
	// recovered is when each tenant's ("" every tenant's) parked intents were last released, for
	// the intents parked before that which reach a tier after it (releasedLate).
	recovered map[string]time.Time
}

// noticeLag is how long after a release a worker may still park an intent behind the recovered
// provider: until the recovery's notice reaches it (Redis delivers it within milliseconds; the
// rest allows for clocks that disagree).
const noticeLag = 5 * time.Second

// recoveryMemory is how long a release is remembered for intents parked before it: longer than a
// park waits (4 min by default), so that one redelivered by a rebalance still finds it.
const recoveryMemory = time.Hour

// New returns a retrier publishing to comms.send.
func New(cfg Config, log *slog.Logger) *Retrier {
	if cfg.Group == "" {
		cfg.Group = "comms-retrier"
	}
	if cfg.MaxWaiting == 0 {
		cfg.MaxWaiting = 10_000
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 200 * time.Millisecond
	}
	r := &Retrier{cfg: cfg, out: queue.NewProducer(cfg.Brokers, queue.TopicSend), log: log.With("service", "retrier"), now: time.Now, lists: map[*waitList]bool{}, recovered: map[string]time.Time{}}
	r.due = batch.NewErr(func(ctx context.Context, envs []queue.Envelope) error { return r.out.Publish(ctx, envs...) },
		batch.Options{Size: 500, Concurrency: 2, Linger: 2 * time.Millisecond})
	return r
}

// Run serves every tier until ctx ends.
func (r *Retrier) Run(ctx context.Context) {
	// The batcher outlives the tiers: a tier stopping may still be publishing what came due.
	pubCtx, stopPub := context.WithCancel(context.WithoutCancel(ctx))
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); r.due.Run(pubCtx) }()
	var wg sync.WaitGroup
	for _, tier := range queue.RetryTiers {
		wg.Add(1)
		go func() { defer wg.Done(); r.runTier(ctx, queue.TierTopic(tier)) }()
	}
	wg.Wait()
	stopPub()
	<-pubDone
	_ = r.out.Close()
}

func (r *Retrier) runTier(ctx context.Context, topic string) {
	// Waiting intents sit in a heap ordered by due time, with one timer for the tier: a goroutine
	// and a runtime timer per waiting intent (10,000 per tier behind a hanging provider) cost the
	// garbage collector a stack scan each and the scheduler a timer each, on the cores the other
	// tenants' sends use. Each holds its delivery's in-flight slot, so MaxWaiting bounds the heap.
	wl := &waitList{wake: make(chan struct{}, 1)}
	r.mu.Lock()
	r.lists[wl] = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); delete(r.lists, wl); r.mu.Unlock() }()

	var publishing sync.WaitGroup
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		r.schedule(ctx, wl, func(w waiting) {
			publishing.Add(1)
			go func() {
				defer publishing.Done()
				w.d.Finish(r.publish(ctx, w.env))
			}()
		})
		// Still-waiting intents stay uncommitted: the next retrier gets them again.
		for _, w := range wl.drain() {
			w.d.Finish(false)
		}
	}()
	err := queue.Consume(ctx, queue.ConsumerConfig{
		Brokers: r.cfg.Brokers, Group: r.cfg.Group, Topic: topic, InFlight: r.cfg.MaxWaiting,
		CommitInterval: r.cfg.CommitInterval, DrainTimeout: 10 * time.Second, Log: r.log,
	}, func(_ context.Context, d *queue.Delivery) {
		env, err := queue.DecodeMessage(d.Message)
		if err != nil {
			r.log.Error("undecodable intent on a retry tier dropped", "topic", d.Topic, "offset", d.Offset, "err", err)
			d.Finish(true)
			return
		}
		// Checked and held under r.mu, as Release records a release under it: an intent is either
		// held before a release looks through the lists, or sees that release here.
		r.mu.Lock()
		late := r.releasedLate(env)
		if late {
			env.NotBefore = r.now().UTC()
		}
		wl.push(waiting{due: env.NotBefore, env: env, d: d})
		r.mu.Unlock()
		if late {
			r.log.Info("an intent parked before its tenant's parks were released arrived after: released", "tenant_id", env.TenantID, "message_id", env.MessageID, "parked_at", env.EnqueuedAt)
		}
	})
	if err != nil {
		r.log.Warn("retry tier consumer closed with an error", "topic", topic, "err", err)
	}
	<-schedDone
	publishing.Wait()
}

// schedule hands each waiting intent to release once it is due, until ctx ends.
func (r *Retrier) schedule(ctx context.Context, wl *waitList, release func(waiting)) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next, ok := wl.popDue(r.now())
		for ok {
			release(next)
			next, ok = wl.popDue(r.now())
		}
		if wait, waits := wl.untilNext(r.now()); waits {
			t.Reset(wait)
		} else {
			t.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-wl.wake:
		case <-t.C:
		}
	}
}

// Release makes every intent parked for tenantID (every parked intent, for "") due now: a
// provider behind which they were parked has recovered. Parked intents are those deferred
// unclaimed (Envelope.Parked), whose messages are queued and due; a retry waiting out its
// backoff keeps its time, even if it was parked before, as its claim would refuse it early. It
// returns how many it released.
func (r *Retrier) Release(tenantID string) int {
	n, now, parked := 0, r.now(), parkedFor(tenantID)
	r.mu.Lock()
	r.recovered[tenantID] = now // before the lists are looked through: see runTier
	for t, at := range r.recovered {
		if now.Sub(at) > recoveryMemory {
			delete(r.recovered, t)
		}
	}
	r.mu.Unlock()
	for _, wl := range r.waitLists() {
		n += wl.release(now, func(w waiting) bool { return parked(w.env) })
	}
	return n
}

// releasedLate reports whether env is an intent parked (at its EnqueuedAt) before a release of its
// tenant's parked intents (or within noticeLag after it) that reached this retrier only after the
// release: it was on its way through the tier, or a rebalance handed it over again. It is as due
// as the intents released: otherwise it would wait out its park, up to minutes after the provider
// recovered. r.mu is held.
func (r *Retrier) releasedLate(env queue.Envelope) bool {
	if !env.Parked {
		return false
	}
	at := r.recovered[env.TenantID]
	if all := r.recovered[""]; all.After(at) {
		at = all
	}
	return !at.IsZero() && env.EnqueuedAt.Before(at.Add(noticeLag)) && env.NotBefore.After(r.now())
}

// ReleaseOne makes the parked intent of tenantID (of any tenant, for "") that is due soonest due
// now, to carry the probe of a breaker whose cooldown ended with no intent parked to carry it. It
// reports whether there was one.
func (r *Retrier) ReleaseOne(tenantID string) bool {
	var (
		first   *waitList
		carrier *queue.Delivery
		due     time.Time
		now     = r.now()
	)
	for _, wl := range r.waitLists() {
		if w, ok := wl.first(now, parkedFor(tenantID)); ok && (first == nil || w.due.Before(due)) {
			first, carrier, due = wl, w.d, w.due
		}
	}
	return first != nil && first.release(now, func(w waiting) bool { return w.d == carrier }) == 1
}

// parkedFor matches the parked intents of tenantID (of every tenant, for "").
func parkedFor(tenantID string) func(queue.Envelope) bool {
	return func(env queue.Envelope) bool { return env.Parked && (tenantID == "" || env.TenantID == tenantID) }
}

// waitLists are the tiers' waiting lists now.
func (r *Retrier) waitLists() []*waitList {
	r.mu.Lock()
	defer r.mu.Unlock()
	lists := make([]*waitList, 0, len(r.lists))
	for wl := range r.lists {
		lists = append(lists, wl)
	}
	return lists
}

// Waiting is the number of intents held now, across tiers.
func (r *Retrier) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for wl := range r.lists {
		wl.mu.Lock()
		n += len(wl.h)
		wl.mu.Unlock()
	}
	return n
}

// publish puts a due intent back on comms.send. It reports whether the offset may be committed:
// false when shutting down first.
func (r *Retrier) publish(ctx context.Context, env queue.Envelope) bool {
	return retry.UntilDone(ctx, func() error {
		_, err := r.due.Do(ctx, env)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("re-publishing a due retry failed; trying again", "tenant_id", env.TenantID, "message_id", env.MessageID, "attempt", env.Attempt, "err", err)
		}
		return err
	}) == nil
}

// waiting is an intent held until it is due.
type waiting struct {
	due time.Time
	env queue.Envelope
	d   *queue.Delivery
}

// waitList is a min-heap of waiting intents by due time; wake tells the scheduler that an intent
// may have become the earliest.
type waitList struct {
	mu     sync.Mutex
	h      waitHeap
	closed bool // the tier is stopping: nothing more is held
	wake   chan struct{}
}

func (l *waitList) push(w waiting) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		w.d.Finish(false) // fetched as the tier stopped: the next retrier gets it
		return
	}
	heap.Push(&l.h, w)
	earliest := !l.h[0].due.Before(w.due) // a later one leaves the scheduler's timer right
	l.mu.Unlock()
	if earliest {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// release makes the waiting intents that match due at now, and reports how many there were.
func (l *waitList) release(now time.Time, match func(waiting) bool) int {
	l.mu.Lock()
	n := 0
	for i := range l.h {
		if l.h[i].due.After(now) && match(l.h[i]) {
			l.h[i].due, l.h[i].env.NotBefore = now, now.UTC()
			n++
		}
	}
	if n > 0 {
		heap.Init(&l.h)
	}
	l.mu.Unlock()
	if n > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return n
}

// first returns the waiting intent that matches and is due soonest after now, if any.
func (l *waitList) first(now time.Time, match func(queue.Envelope) bool) (first waiting, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.h {
		if w.due.After(now) && match(w.env) && (!ok || w.due.Before(first.due)) {
			first, ok = w, true
		}
	}
	return first, ok
}

// popDue removes and returns the earliest intent if it is due at now.
func (l *waitList) popDue(now time.Time) (waiting, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.h) == 0 || l.h[0].due.After(now) {
		return waiting{}, false
	}
	return heap.Pop(&l.h).(waiting), true
}

// drain removes and returns every waiting intent, and closes the list to new ones.
func (l *waitList) drain() []waiting {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.h
	l.h, l.closed = nil, true
	return out
}

// untilNext reports how long until the earliest intent is due, if any waits.
func (l *waitList) untilNext(now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.h) == 0 {
		return 0, false
	}
	return l.h[0].due.Sub(now), true
}

type waitHeap []waiting

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h waitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)        { *h = append(*h, x.(waiting)) }
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = waiting{}
	*h = old[:len(old)-1]
	return w
}
