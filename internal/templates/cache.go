package templates

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/logicspike/comms/internal/domain"
	"github.com/logicspike/comms/internal/platform/invalidate"
)

// The active versions of a template are cached in three places: compiled in each API process,
// as JSON in Redis (so a process that has not seen a template yet does not go to PostgreSQL), and
// in PostgreSQL, the truth. Every change (activation, edit, archive) counts the template's
// revision in the same statement, deletes the Redis entry and publishes the new revision; each
// process then drops its entry and refuses any older one, including one that a read racing the
// change put back in Redis or in its own cache. A process that misses the notice serves the old
// version until its entry expires (localTTL). With Redis down every miss reads PostgreSQL.
const (
	localTTL     = 30 * time.Second
	redisTTL     = time.Minute
	floorTTL     = 2 * redisTTL // how long a notice's revision is remembered: past any racing write
	maxLocal     = 10_000       // entries per process
	noticeSuffix = "templates-changed"
)

// active is a template with its active version per locale, compiled.
type active struct {
	tpl      domain.Template // with its revision
	schema   *Schema
	byLocale map[string]*compiled
	expires  time.Time
}

// Cache holds active templates.
type Cache struct {
	rdb    *redis.Client // nil: no shared cache and no notices
	prefix string
	log    *slog.Logger

	mu      sync.Mutex
	entries map[string]*active // by tenant id + " " + key
	floors  map[string]floor   // the lowest revision still current, from changes and notices
}

type floor struct {
	rev int64
	at  time.Time
}

// NewCache returns a cache sharing entries and notices through rdb (nil: this process only) under
// the deployment's Redis prefix.
func NewCache(rdb *redis.Client, prefix string, log *slog.Logger) *Cache {
	return &Cache{rdb: rdb, prefix: prefix, log: log, entries: map[string]*active{}, floors: map[string]floor{}}
}

// Run drops entries as change notices arrive, until ctx ends; after a Redis outage it drops them
// all, since notices were missed meanwhile.
func (c *Cache) Run(ctx context.Context) {
	if c.rdb == nil {
		return
	}
	invalidate.Subscribe(ctx, c.rdb, c.prefix+noticeSuffix, c.log, c.dropAll, func(payload string) {
		i := strings.LastIndexByte(payload, ' ')
		if rev, err := strconv.ParseInt(payload[i+1:], 10, 64); i > 0 && err == nil {
			c.raise(payload[:i], rev)
		}
	})
}

func (c *Cache) dropAll() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// raise drops id's entry and refuses entries of it older than rev from now on.
func (c *Cache) raise(id string, rev int64) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	if f := c.floors[id]; rev > f.rev {
		c.floors[id] = floor{rev, now}
	}
	if len(c.floors) > maxLocal {
		for k, f := range c.floors {
			if now.Sub(f.at) > floorTTL {
				delete(c.floors, k)
			}
		}
	}
}

// current reports whether rev is at least id's floor.
func (c *Cache) current(id string, rev int64) bool {
	f := c.floors[id]
	return rev >= f.rev || time.Since(f.at) > floorTTL
}

// activeVersions reads what the cache holds.
type activeVersions interface {
	ListActiveTemplateVersions(ctx context.Context, tenantID, key string) (domain.Template, []domain.TemplateVersion, error)
}

// shared is what Redis holds for one template: JSON in domain's field names. redisKey carries
// cacheFormat, so an entry written in another shape by an older or newer release is a miss, not
// a misread; bump it whenever domain.Template or domain.TemplateVersion changes shape.
type shared struct {
	Template domain.Template          `json:"template"`
	Versions []domain.TemplateVersion `json:"versions"`
	Revision int64                    `json:"revision"`
}

// get returns tenantID's unarchived template key with its active versions, or store.ErrNotFound.
func (c *Cache) get(ctx context.Context, st activeVersions, tenantID, key string) (*active, error) {
	id := tenantID + " " + key
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && time.Now().Before(e.expires) {
		return e, nil
	}
	// A read that raced a change may return the revision before it; the change's floor turns it
	// away, and the next read sees the change.
	for attempt := 0; ; attempt++ {
		sh, err := c.load(ctx, st, tenantID, key, id, attempt > 0)
		if err != nil {
			return nil, err
		}
		e, err := build(sh)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if !c.current(id, e.tpl.Revision) && attempt < 3 {
			c.mu.Unlock()
			continue
		}
		if len(c.entries) >= maxLocal {
			for k := range c.entries { // evict one at random
				delete(c.entries, k)
				break
			}
		}
		c.entries[id] = e
		c.mu.Unlock()
		return e, nil
	}
}

// load reads the template from Redis (unless skipRedis) or PostgreSQL, refilling Redis.
func (c *Cache) load(ctx context.Context, st activeVersions, tenantID, key, id string, skipRedis bool) (shared, error) {
	var sh shared
	if c.rdb != nil && !skipRedis {
		raw, err := c.rdb.Get(ctx, c.redisKey(id)).Bytes()
		switch {
		case err == nil:
			if json.Unmarshal(raw, &sh) == nil {
				sh.Template.Revision = sh.Revision
				return sh, nil
			}
		case !errors.Is(err, redis.Nil):
			c.log.WarnContext(ctx, "template cache unavailable; reading the database", "tenant_id", tenantID, "err", err)
		}
	}
	tpl, vs, err := st.ListActiveTemplateVersions(ctx, tenantID, key)
	if err != nil {
		return shared{}, err
	}
	sh = shared{Template: tpl, Versions: vs, Revision: tpl.Revision}
	if c.rdb != nil {
		if raw, err := json.Marshal(sh); err == nil {
			_ = c.rdb.Set(ctx, c.redisKey(id), raw, redisTTL).Err() // a miss next time costs one query
		}
	}
	return sh, nil
}

func build(sh shared) (*active, error) {
	schema, err := ParseSchema(sh.Template.Variables)
	if err != nil {
		return nil, err
	}
	e := &active{tpl: sh.Template, schema: schema, byLocale: map[string]*compiled{}, expires: time.Now().Add(localTTL)}
	for _, v := range sh.Versions {
		cv, faults := compile(v, sh.Template.Channel, schema, false)
		if len(faults) > 0 {
			return nil, errors.New("stored version does not compile: " + faults[0].Field + ": " + faults[0].Message)
		}
		e.byLocale[v.Locale] = cv
	}
	return e, nil
}

// changed announces revision rev of tenantID's template key here, in Redis, and to every process
// that hears the notice.
func (c *Cache) changed(ctx context.Context, tenantID, key string, rev int64) {
	id := tenantID + " " + key
	c.raise(id, rev)
	if c.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	err := errors.Join(c.rdb.Del(ctx, c.redisKey(id)).Err(),
		c.rdb.Publish(ctx, c.prefix+noticeSuffix, id+" "+strconv.FormatInt(rev, 10)).Err())
	if err != nil {
		c.log.WarnContext(ctx, "could not announce a template change; other processes see it when their entry expires",
			"tenant_id", tenantID, "template", key, "err", err)
	}
}

// cacheFormat names the shape of shared in its Redis key.
const cacheFormat = "v2"

func (c *Cache) redisKey(id string) string {
	return c.prefix + "template:" + cacheFormat + ":" + strings.Replace(id, " ", ":", 1)
}
