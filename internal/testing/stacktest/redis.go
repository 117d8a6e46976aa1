package stacktest

import (
	"context"

	"github.com/logicspike/comms/internal/inbox"
)

// LoseRedisKeys deletes the stack's Redis keys matching pattern (after its prefix), as a Redis
// restart without persistence would, leaving other stacks' keys alone.
func (s *Stack) LoseRedisKeys(pattern string) {
	s.tb.Helper()
	ctx := context.Background()
	iter := s.rdb.Scan(ctx, 0, s.prefix+pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if err := s.rdb.Del(ctx, iter.Val()).Err(); err != nil {
			s.tb.Fatal(err)
		}
	}
	if err := iter.Err(); err != nil {
		s.tb.Fatal(err)
	}
}

// Announcer announces inbox arrivals on the stack's Redis, as its workers do.
func (s *Stack) Announcer() *inbox.Announcer { return inbox.NewAnnouncer(s.rdb, s.prefix, s.Log) }
