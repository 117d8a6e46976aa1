// Package dlq is the ops side of the dead-letter queue: list what ran out of retries and replay
// it, filtered, idempotently and on the record. The comms.send.dlq topic carries a copy of each
// dead letter for other consumers; the dead_letters table is what is filtered and replayed.
package dlq

import (
	"context"
	"log/slog"
	"time"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/queue"
	"github.com/logicspike/comms/internal/store"
)

// Publisher puts replayed intents on comms.send.
type Publisher interface {
	Publish(ctx context.Context, envs ...queue.Envelope) error
}

// Store is what the dead-letter service reads and changes; *store.Store implements it.
type Store interface {
	ListDeadLetters(ctx context.Context, f domain.DeadLetterFilter, before int64, limit int) ([]domain.DeadLetter, error)
	GetDeadLetter(ctx context.Context, id int64) (domain.DeadLetter, error)
	ReplayDeadLetters(ctx context.Context, f domain.DeadLetterFilter, actor string, dryRun bool) (domain.Replay, []store.Stranded, error)
	ListReplays(ctx context.Context, limit int) ([]domain.Replay, error)
	MarkPublished(ctx context.Context, refs []store.Ref) error
}

// Service lists and replays dead letters.
type Service struct {
	store    Store
	pub      Publisher
	log      *slog.Logger
	progress func(published, total int)
}

// publishChunk is how many replayed intents are published (and marked) at a time, so a replay
// of a large outage reports progress and a broker failure midway leaves less for the sweeper.
const publishChunk = 1000

// WithProgress calls progress after each chunk of a replay's intents is published.
func (s *Service) WithProgress(progress func(published, total int)) *Service {
	s.progress = progress
	return s
}

// New returns a service publishing replays with pub.
func New(s Store, pub Publisher, log *slog.Logger) *Service {
	return &Service{store: s, pub: pub, log: log}
}

// List returns up to limit entries f selects, newest first, before the entry id before (0:
// from the newest).
func (s *Service) List(ctx context.Context, f domain.DeadLetterFilter, before int64, limit int) ([]domain.DeadLetter, error) {
	return s.store.ListDeadLetters(ctx, f, before, limit)
}

// Get returns one entry. Errors: store.ErrNotFound.
func (s *Service) Get(ctx context.Context, id int64) (domain.DeadLetter, error) {
	return s.store.GetDeadLetter(ctx, id)
}

// Replays returns the last limit replays, newest first.
func (s *Service) Replays(ctx context.Context, limit int) ([]domain.Replay, error) {
	return s.store.ListReplays(ctx, limit)
}

// Replay re-queues the messages of the dead letters f selects (see domain.ReplayDeadLetters) and
// publishes their intents. If publishing fails they are already durable and queued: the sweeper
// publishes them.
func (s *Service) Replay(ctx context.Context, f domain.DeadLetterFilter, actor string, dryRun bool) (domain.Replay, error) {
	rep, queued, err := s.store.ReplayDeadLetters(ctx, f, actor, dryRun)
	if err != nil {
		return domain.Replay{}, err
	}
	s.log.InfoContext(ctx, "dead letters replayed", "replay_id", rep.ID, "actor", actor, "dry_run", dryRun,
		"matched", rep.Matched, "replayed", rep.Replayed, "tenant_id", f.TenantID)
	if len(queued) == 0 {
		return rep, nil
	}
	now := time.Now().UTC()
	for start := 0; start < len(queued); start += publishChunk {
		chunk := queued[start:min(start+publishChunk, len(queued))]
		envs := make([]queue.Envelope, len(chunk))
		refs := make([]store.Ref, len(chunk))
		for i, q := range chunk {
			envs[i] = queue.Envelope{MessageID: q.ID, TenantID: q.TenantID, Channel: q.Channel, Attempt: q.Attempts + 1, EnqueuedAt: now}
			refs[i] = q.Ref
		}
		if err := s.pub.Publish(ctx, envs...); err != nil {
			s.log.WarnContext(ctx, "replayed messages are queued but not yet published; the sweeper will publish them", "replay_id", rep.ID,
				"unpublished", len(queued)-start, "err", err)
			return rep, nil
		}
		if err := s.store.MarkPublished(ctx, refs); err != nil {
			s.log.WarnContext(ctx, "could not mark replayed messages published; the sweeper may publish them again", "replay_id", rep.ID, "err", err)
		}
		if s.progress != nil {
			s.progress(start+len(chunk), len(queued))
		}
	}
	return rep, nil
}
