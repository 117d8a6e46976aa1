package intake

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/batch"
)

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// IdempotencyCache is the Redis fast path for idempotency keys: a repeated request is answered
// without touching PostgreSQL, whose primary key stays the truth. Lookups of concurrent requests
// share one MGET, and writes are pipelined in the background: a write that is lost only sends a
// later duplicate to the database.
type IdempotencyCache struct {
	rdb    *redis.Client
	prefix string
	gets   *batch.Batcher[string, string]
	sets   *batch.Batcher[setItem, batch.Done]
}

type setItem struct {
	key, value string
	ttl        time.Duration
}

// NewIdempotencyCache returns a cache storing keys under prefix. Run it before use.
func NewIdempotencyCache(rdb *redis.Client, prefix string) *IdempotencyCache {
	c := &IdempotencyCache{rdb: rdb, prefix: prefix}
	c.gets = batch.New(c.mget, batch.Options{Size: 500, Concurrency: 2})
	c.sets = batch.NewErr(c.pipelineSet, batch.Options{Size: 500, Concurrency: 1, Linger: 2 * time.Millisecond})
	return c
}

// Run runs the batchers until ctx ends.
func (c *IdempotencyCache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.sets.Run(ctx) }()
	c.gets.Run(ctx)
	wg.Wait()
}

func (c *IdempotencyCache) mget(ctx context.Context, keys []string) ([]string, error) {
	vals, err := c.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok {
			out[i] = s
		}
	}
	return out, nil
}

func (c *IdempotencyCache) pipelineSet(ctx context.Context, items []setItem) error {
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			p.Set(ctx, it.key, it.value, it.ttl)
		}
		return nil
	})
	return err
}

// Entry is what a key maps to.
type Entry struct {
	MessageID string
	Hash      []byte
	CreatedAt time.Time
}

func (e *Entry) sameHash(h []byte) bool { return bytes.Equal(e.Hash, h) }

func (c *IdempotencyCache) key(tenantID, key string) string {
	return c.prefix + "idem:" + tenantID + ":" + key
}

// Get returns the entry for (tenant, key), or nil.
func (c *IdempotencyCache) Get(ctx context.Context, tenantID, key string) (*Entry, error) {
	v, err := c.gets.Do(ctx, c.key(tenantID, key))
	if err != nil || v == "" {
		return nil, err
	}
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed idempotency entry %q", v)
	}
	h, err1 := hex.DecodeString(parts[1])
	ns, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("malformed idempotency entry %q: %w", v, err)
	}
	return &Entry{MessageID: parts[0], Hash: h, CreatedAt: time.Unix(0, ns).UTC()}, nil
}

// Set remembers (tenant, key) for the rest of the window that started at e.CreatedAt, in the
// background. It reports false if the write could not even be queued.
func (c *IdempotencyCache) Set(tenantID, key string, e Entry) bool {
	ttl := time.Until(e.CreatedAt.Add(IdempotencyWindow))
	if ttl <= 0 {
		return true
	}
	v := e.MessageID + "|" + hex.EncodeToString(e.Hash) + "|" + strconv.FormatInt(e.CreatedAt.UnixNano(), 10)
	return c.sets.TrySubmit(setItem{key: c.key(tenantID, key), value: v, ttl: ttl})
}
