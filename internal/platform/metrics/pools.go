package metrics

import (
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Pool metrics are read from the pools at scrape time, so they cost nothing between scrapes. A
// process may hold more than one pool of a kind (the dev binary, tests): their figures are summed.

var pools = &poolCollector{pg: map[*pgxpool.Pool]struct{}{}, redis: map[*redis.Client]struct{}{}}

func init() { prometheus.MustRegister(pools) }

// WatchPostgres exports pool's figures as comms_db_pool_*; the returned function stops (call it
// when the pool closes).
func WatchPostgres(pool *pgxpool.Pool) (stop func()) {
	pools.mu.Lock()
	defer pools.mu.Unlock()
	pools.pg[pool] = struct{}{}
	return func() {
		pools.mu.Lock()
		defer pools.mu.Unlock()
		delete(pools.pg, pool)
	}
}

// WatchRedis exports rdb's connection pool figures as comms_redis_pool_*; the returned function
// stops.
func WatchRedis(rdb *redis.Client) (stop func()) {
	pools.mu.Lock()
	defer pools.mu.Unlock()
	pools.redis[rdb] = struct{}{}
	return func() {
		pools.mu.Lock()
		defer pools.mu.Unlock()
		delete(pools.redis, rdb)
	}
}

var (
	dbMax      = prometheus.NewDesc("comms_db_pool_max_connections", "PostgreSQL connections the pool may open (COMMS_DB_MAX_CONNS).", nil, nil)
	dbConns    = prometheus.NewDesc("comms_db_pool_connections", "PostgreSQL connections by state: acquired (in use), idle, constructing.", []string{"state"}, nil)
	dbAcquires = prometheus.NewDesc("comms_db_pool_acquires_total", "Connections taken from the pool.", nil, nil)
	dbWaits    = prometheus.NewDesc("comms_db_pool_waits_total", "Acquires that found no idle connection and waited for one: the pool is too small or the database slow.", nil, nil)
	dbWaitSecs = prometheus.NewDesc("comms_db_pool_wait_seconds_total", "Time acquires spent waiting for a connection.", nil, nil)
	dbCanceled = prometheus.NewDesc("comms_db_pool_canceled_acquires_total", "Acquires abandoned (their context ended) before a connection came.", nil, nil)

	redisConns    = prometheus.NewDesc("comms_redis_pool_connections", "Redis connections by state: idle, in_use.", []string{"state"}, nil)
	redisHits     = prometheus.NewDesc("comms_redis_pool_hits_total", "Commands that found an idle connection in the pool.", nil, nil)
	redisWaits    = prometheus.NewDesc("comms_redis_pool_waits_total", "Commands that waited for a connection.", nil, nil)
	redisTimeouts = prometheus.NewDesc("comms_redis_pool_timeouts_total", "Commands that gave up waiting for a connection.", nil, nil)
)

type poolCollector struct {
	mu    sync.Mutex
	pg    map[*pgxpool.Pool]struct{}
	redis map[*redis.Client]struct{}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dbMax, dbConns, dbAcquires, dbWaits, dbWaitSecs, dbCanceled, redisConns, redisHits, redisWaits, redisTimeouts} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pg) > 0 {
		var maxConns, acquired, idle, constructing, acquires, waits, canceled float64
		var wait float64
		for p := range c.pg {
			s := p.Stat()
			maxConns += float64(s.MaxConns())
			acquired += float64(s.AcquiredConns())
			idle += float64(s.IdleConns())
			constructing += float64(s.ConstructingConns())
			acquires += float64(s.AcquireCount())
			waits += float64(s.EmptyAcquireCount())
			wait += s.EmptyAcquireWaitTime().Seconds()
			canceled += float64(s.CanceledAcquireCount())
		}
		ch <- prometheus.MustNewConstMetric(dbMax, prometheus.GaugeValue, maxConns)
		ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, acquired, "acquired")
		ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, idle, "idle")
		ch <- prometheus.MustNewConstMetric(dbConns, prometheus.GaugeValue, constructing, "constructing")
		ch <- prometheus.MustNewConstMetric(dbAcquires, prometheus.CounterValue, acquires)
		ch <- prometheus.MustNewConstMetric(dbWaits, prometheus.CounterValue, waits)
		ch <- prometheus.MustNewConstMetric(dbWaitSecs, prometheus.CounterValue, wait)
		ch <- prometheus.MustNewConstMetric(dbCanceled, prometheus.CounterValue, canceled)
	}
	if len(c.redis) > 0 {
		var total, idle, hits, waits, timeouts float64
		for r := range c.redis {
			s := r.PoolStats()
			total += float64(s.TotalConns)
			idle += float64(s.IdleConns)
			hits += float64(s.Hits)
			waits += float64(s.WaitCount)
			timeouts += float64(s.Timeouts)
		}
		ch <- prometheus.MustNewConstMetric(redisConns, prometheus.GaugeValue, idle, "idle")
		ch <- prometheus.MustNewConstMetric(redisConns, prometheus.GaugeValue, max(total-idle, 0), "in_use")
		ch <- prometheus.MustNewConstMetric(redisHits, prometheus.CounterValue, hits)
		ch <- prometheus.MustNewConstMetric(redisWaits, prometheus.CounterValue, waits)
		ch <- prometheus.MustNewConstMetric(redisTimeouts, prometheus.CounterValue, timeouts)
	}
}
