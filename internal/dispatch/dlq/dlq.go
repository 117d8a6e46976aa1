// Package dlq is the ops side of the dead-letter queue: list what ran out of retries and replay
// it, filtered, idempotently and on the record. The comms.send.dlq topic carries a copy of each
// dead letter for other consumers; the dead_letters table is what is filtered and replayed.
package dlq

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// Publisher puts replayed intents on comms.send.
type Publisher interface {
	Publish(ctx context.Context, envs ...queue.Envelope) error
}

// Service replays dead letters.
type Service struct {
	store *store.Store
	pub   Publisher
	log   *slog.Logger
}

// New returns a service publishing replays with pub.
func New(s *store.Store, pub Publisher, log *slog.Logger) *Service {
	return &Service{store: s, pub: pub, log: log}
}

// Replay re-queues the messages of the dead letters f selects (see store.ReplayDeadLetters) and
// publishes their intents. If publishing fails they are already durable and queued: the sweeper
// publishes them.
func (s *Service) Replay(ctx context.Context, f store.DLQFilter, actor string, dryRun bool) (store.Replay, error) {
	rep, queued, err := s.store.ReplayDeadLetters(ctx, f, actor, dryRun)
	if err != nil {
		return store.Replay{}, err
	}
	s.log.InfoContext(ctx, "dead letters replayed", "replay_id", rep.ID, "actor", actor, "dry_run", dryRun,
		"matched", rep.Matched, "replayed", rep.Replayed, "tenant_id", f.TenantID)
	if len(queued) == 0 {
		return rep, nil
	}
	now := time.Now().UTC()
	envs := make([]queue.Envelope, len(queued))
	refs := make([]store.Ref, len(queued))
	for i, q := range queued {
		envs[i] = queue.Envelope{MessageID: q.ID, TenantID: q.TenantID, Channel: q.Channel, Attempt: q.Attempts + 1, EnqueuedAt: now}
		refs[i] = q.Ref
	}
	if err := s.pub.Publish(ctx, envs...); err != nil {
		s.log.WarnContext(ctx, "replayed messages are queued but not yet published; the sweeper will publish them", "replay_id", rep.ID, "err", err)
		return rep, nil
	}
	if err := s.store.MarkPublished(ctx, refs); err != nil {
		s.log.WarnContext(ctx, "could not mark replayed messages published; the sweeper may publish them again", "replay_id", rep.ID, "err", err)
	}
	return rep, nil
}
