-- Webhook deliveries and their attempts are range-partitioned by UTC week too
-- (docs/operations.md#partitions), so that they go by dropping a week's partitions rather than by
-- deleting rows: each event of a tenant with endpoints leaves a delivery per endpoint, with the
-- CloudEvent as sent, and an attempt per try.
--
-- A delivery's week is its event's time (created_at): every copy of the event carries it (one
-- fetched again after a crash, or published twice by the outbox), so the unique key, which a
-- partitioned table holds only with its partition key, still finds the delivery again. An event
-- whose time is more than a week before its publication or an hour after it (a provider's clock)
-- is filed under its publication's time instead (webhooks.deliveryTime). An attempt's week is its
-- delivery's (delivery_at).
--
-- Attempts keep no foreign key to their delivery: PostgreSQL will not drop a week of a partitioned
-- table that a foreign key references, and detaching it first checks every referencing week. The
-- store deletes a delivery's attempts with it (an endpoint's deletion, the history purge), and a
-- week of attempts is dropped with its week of deliveries.
--
-- Like 0027, this rewrites both tables in one transaction, blocking webhook deliveries for as long
-- as the copy takes; docs/operations.md#partitions says how to shrink the copy first.

SET LOCAL statement_timeout = 0;

INSERT INTO communication.partitioned_tables (name, storage) VALUES
    ('webhook_deliveries', 'fillfactor = 90'), -- a delivery is updated by each attempt
    ('webhook_attempts', '');

ALTER TABLE communication.webhook_attempts RENAME TO webhook_attempts_unpartitioned;
ALTER SEQUENCE communication.webhook_attempts_id_seq RENAME TO webhook_attempts_unpartitioned_id_seq;
ALTER TABLE communication.webhook_attempts_unpartitioned RENAME CONSTRAINT webhook_attempts_pkey TO webhook_attempts_unpartitioned_pkey;
ALTER INDEX communication.webhook_attempts_delivery RENAME TO webhook_attempts_unpartitioned_delivery;

ALTER TABLE communication.webhook_deliveries RENAME TO webhook_deliveries_unpartitioned;
ALTER SEQUENCE communication.webhook_deliveries_id_seq RENAME TO webhook_deliveries_unpartitioned_id_seq;
ALTER TABLE communication.webhook_deliveries_unpartitioned RENAME CONSTRAINT webhook_deliveries_pkey TO webhook_deliveries_unpartitioned_pkey;
ALTER TABLE communication.webhook_deliveries_unpartitioned
    RENAME CONSTRAINT webhook_deliveries_endpoint_id_event_id_key TO webhook_deliveries_unpartitioned_endpoint_event;
ALTER INDEX communication.webhook_deliveries_due RENAME TO webhook_deliveries_unpartitioned_due;
ALTER INDEX communication.webhook_deliveries_endpoint RENAME TO webhook_deliveries_unpartitioned_endpoint;

-- webhook_deliveries ------------------------------------------------------------------------

CREATE TABLE communication.webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    endpoint_id      text NOT NULL REFERENCES communication.webhook_endpoints (id) ON DELETE CASCADE,
    tenant_id        text NOT NULL,
    event_id         text NOT NULL, -- the webhook-id header: the same on every attempt and replay
    event_type       text NOT NULL,
    payload          bytea NOT NULL, -- the body exactly as signed
    status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         int NOT NULL DEFAULT 0, -- every attempt, replays included
    round_attempts   int NOT NULL DEFAULT 0, -- attempts since the delivery was (re)queued: the place in the retry schedule
    next_attempt_at  timestamptz, -- while pending
    last_attempt_at  timestamptz,
    last_status_code int,
    created_at       timestamptz NOT NULL, -- the event's time: the partition key
    PRIMARY KEY (tenant_id, id, created_at),
    -- A tenant's deliveries of one event (the eraser finds them by event), one per endpoint.
    UNIQUE (tenant_id, event_id, endpoint_id, created_at)
) PARTITION BY RANGE (created_at);

SELECT communication.create_partitions('webhook_deliveries',
    least(coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date - 7 FROM communication.webhook_deliveries_unpartitioned), current_date),
          coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.message_logs), current_date)),
    (now() AT TIME ZONE 'UTC')::date + 14);
-- A delivery's week becomes its event's time, as the deliverer files new ones (an event time far
-- from when the delivery was first seen keeps the latter).
INSERT INTO communication.webhook_deliveries (id, endpoint_id, tenant_id, event_id, event_type, payload, status, attempts,
                                              round_attempts, next_attempt_at, last_attempt_at, last_status_code, created_at)
OVERRIDING SYSTEM VALUE
SELECT d.id, d.endpoint_id, d.tenant_id, d.event_id, d.event_type, d.payload, d.status, d.attempts, d.round_attempts,
       d.next_attempt_at, d.last_attempt_at, d.last_status_code,
       CASE WHEN t.at BETWEEN d.created_at - interval '7 days' AND d.created_at + interval '1 hour' THEN t.at ELSE d.created_at END
FROM communication.webhook_deliveries_unpartitioned d,
     LATERAL (SELECT (substring(convert_from(d.payload, 'UTF8') FROM '"time":"(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d))"'))::timestamptz AS at) t;
SELECT setval(pg_get_serial_sequence('communication.webhook_deliveries', 'id'),
              coalesce((SELECT max(id) FROM communication.webhook_deliveries_unpartitioned), 0) + 1, false);

-- Due deliveries, for the retry loop; an endpoint's newest first, for its delivery log.
CREATE INDEX webhook_deliveries_due ON communication.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON communication.webhook_deliveries (endpoint_id, id);

-- webhook_attempts --------------------------------------------------------------------------

CREATE TABLE communication.webhook_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id    text NOT NULL,
    delivery_id  bigint NOT NULL,
    delivery_at  timestamptz NOT NULL, -- the delivery's created_at: the partition key
    attempted_at timestamptz NOT NULL,
    status_code  int, -- null: no response (refused, timed out, connection failed)
    latency_ms   int NOT NULL,
    response     text NOT NULL DEFAULT '', -- the start of the response body
    error        text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, delivery_id, id, delivery_at)
) PARTITION BY RANGE (delivery_at);

SELECT communication.create_partitions('webhook_attempts', p.first, (now() AT TIME ZONE 'UTC')::date + 14)
FROM (SELECT coalesce(min(created_at AT TIME ZONE 'UTC')::date, current_date) AS first FROM communication.webhook_deliveries) p;
INSERT INTO communication.webhook_attempts (id, tenant_id, delivery_id, delivery_at, attempted_at, status_code, latency_ms, response, error)
OVERRIDING SYSTEM VALUE
SELECT a.id, d.tenant_id, d.id, d.created_at, a.attempted_at, a.status_code, a.latency_ms, a.response, a.error
FROM communication.webhook_attempts_unpartitioned a
JOIN communication.webhook_deliveries d ON d.id = a.delivery_id;
SELECT setval(pg_get_serial_sequence('communication.webhook_attempts', 'id'),
              coalesce((SELECT max(id) FROM communication.webhook_attempts_unpartitioned), 0) + 1, false);

DROP TABLE communication.webhook_attempts_unpartitioned;
DROP TABLE communication.webhook_deliveries_unpartitioned;

ANALYZE communication.webhook_deliveries, communication.webhook_attempts;
