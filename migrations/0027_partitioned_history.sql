-- Messages and their events, the two largest tables, are range-partitioned by UTC week, Monday
-- to Monday (docs/operations.md#partitions): history past every tenant's retention goes by
-- dropping a week's partitions, not by deleting rows, and every hot query names the week it needs.
--
-- A message id carries the millisecond it was made (pkg/ids), and a message's created_at is that
-- instant (the intake writes it so; this file brings older rows to it), so a lookup by id alone
-- names its partition and its primary key: created_at = id_time(id). No CHECK holds rows to it:
-- evaluating id_time for every row written cost the intake a quarter of its rate. A message's
-- events carry the message's created_at as message_at, their partition key, so a timeline is in
-- the same week as its message.
--
-- This file rewrites both tables in one transaction, which blocks writers for as long as the copy
-- takes (about two minutes a million messages on a small machine). docs/operations.md#partitions says
-- how to shrink the copy first on a big installation.

-- The copy takes as long as the tables need (docs/operations.md#partitions), not the migrator's
-- five minutes.
SET LOCAL statement_timeout = 0;

-- The time a sortable id was made (ids.SortableTime), or NULL for an id that is not one. One
-- expression, so that the planner inlines it: the eight characters after the prefix are the
-- milliseconds since 1970 in base 62.
CREATE FUNCTION communication.id_time(id text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT CASE WHEN strpos(id, '_') > 1 AND length(id) = strpos(id, '_') + 22 THEN to_timestamp((
        ((((((((strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 1, 1)) - 1)::bigint)
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 2, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 3, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 4, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 5, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 6, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 7, 1)) - 1))
        * 62 + (strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', substr(id, strpos(id, '_') + 8, 1)) - 1)
    ) / 1000.0) END
$$;

-- The partitioned history tables and their partition keys, for the maintenance loop and commsctl.
CREATE TABLE communication.partitioned_tables (
    name text PRIMARY KEY,
    storage text NOT NULL DEFAULT '' -- WITH (...) of each partition, "" for none
);
INSERT INTO communication.partitioned_tables (name, storage) VALUES
    ('message_logs', 'fillfactor = 70'), -- room for HOT updates, as the table had (0008)
    ('message_events', '');

-- Creates parent's partitions for the UTC weeks (from Monday) that hold the days first through
-- last and that it lacks, named <parent>_pYYYYMMDD after their Monday, and returns how many it
-- created. There is no default partition: with one, PostgreSQL cannot read the weeks in order (a
-- message list would probe every one), so the workers make the weeks ahead
-- (docs/operations.md#partitions).
CREATE FUNCTION communication.create_partitions(parent text, first date, last date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    w       date;
    n       int := 0;
    storage text := (SELECT p.storage FROM communication.partitioned_tables p WHERE p.name = parent);
    opts    text := '';
BEGIN
    IF storage IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned history table', parent;
    END IF;
    IF storage <> '' THEN
        opts := ' WITH (' || storage || ')';
    END IF;
    FOR w IN SELECT generate_series(date_trunc('week', first::timestamp), date_trunc('week', last::timestamp), interval '7 days')::date LOOP
        IF to_regclass(format('communication.%I', parent || '_p' || to_char(w, 'YYYYMMDD'))) IS NULL THEN
            EXECUTE format('CREATE TABLE communication.%I PARTITION OF communication.%I FOR VALUES FROM (%L) TO (%L)%s',
                parent || '_p' || to_char(w, 'YYYYMMDD'), parent,
                w::timestamp AT TIME ZONE 'UTC', (w + 7)::timestamp AT TIME ZONE 'UTC', opts);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- message_logs ------------------------------------------------------------------------------

ALTER TABLE communication.message_logs RENAME TO message_logs_unpartitioned;
CREATE TABLE communication.message_logs (
    LIKE communication.message_logs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
) PARTITION BY RANGE (created_at);

SELECT communication.create_partitions('message_logs',
    coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.message_logs_unpartitioned), current_date),
    (now() AT TIME ZONE 'UTC')::date + 14);
-- Every row's created_at becomes its id's time (they differed by the milliseconds between making
-- the id and inserting the row).
DO $$
BEGIN
    EXECUTE 'INSERT INTO communication.message_logs SELECT ' || (
        SELECT string_agg(CASE attname WHEN 'created_at' THEN 'coalesce(communication.id_time(id), created_at)' ELSE quote_ident(attname) END,
                          ', ' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = 'communication.message_logs_unpartitioned'::regclass AND attnum > 0 AND NOT attisdropped
    ) || ' FROM communication.message_logs_unpartitioned';
END
$$;
DROP TABLE communication.message_logs_unpartitioned;

-- tenant_id first in every key: a later move to a tenant-sharded PostgreSQL (Citus) distributes
-- by it. Lookups by id name the tenant and the id's time, so the key serves them.
ALTER TABLE communication.message_logs ADD PRIMARY KEY (tenant_id, id, created_at);
CREATE INDEX message_logs_tenant_created ON communication.message_logs (tenant_id, created_at DESC, id DESC);
CREATE INDEX message_logs_template ON communication.message_logs (tenant_id, template_key, created_at DESC, id DESC)
    WHERE template_key IS NOT NULL;
CREATE INDEX message_logs_tenant_recipient_key
    ON communication.message_logs (tenant_id, communication.recipient_key(channel, recipient), created_at DESC);

-- message_events ----------------------------------------------------------------------------

ALTER TABLE communication.message_events RENAME TO message_events_unpartitioned;
ALTER SEQUENCE communication.message_events_id_seq RENAME TO message_events_unpartitioned_id_seq;

CREATE TABLE communication.message_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    message_id         text NOT NULL,
    tenant_id          text NOT NULL,
    message_at         timestamptz NOT NULL, -- the message's created_at: the partition key
    status             text NOT NULL,
    attempt            integer NOT NULL DEFAULT 0,
    source             text NOT NULL CHECK (source IN ('internal', 'provider', 'replay')),
    provider_config_id text,
    error_code         text NOT NULL DEFAULT '',
    reason             text NOT NULL DEFAULT '',
    payload            jsonb,
    occurred_at        timestamptz NOT NULL DEFAULT now(),
    provider_type      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, message_id, id, message_at)
) PARTITION BY RANGE (message_at);

SELECT communication.create_partitions('message_events',
    coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.message_logs), current_date),
    (now() AT TIME ZONE 'UTC')::date + 14);
INSERT INTO communication.message_events (id, message_id, tenant_id, message_at, status, attempt, source, provider_config_id,
                                          error_code, reason, payload, occurred_at, provider_type)
OVERRIDING SYSTEM VALUE
SELECT e.id, e.message_id, e.tenant_id, coalesce(communication.id_time(e.message_id), e.occurred_at), e.status,
       e.attempt, e.source, e.provider_config_id, e.error_code, e.reason, e.payload, e.occurred_at, e.provider_type
FROM communication.message_events_unpartitioned e;
SELECT setval(pg_get_serial_sequence('communication.message_events', 'id'),
              coalesce((SELECT max(id) FROM communication.message_events_unpartitioned), 0) + 1, false);

-- The outbox names each event by its full key, so the publisher finds it in its partition.
ALTER TABLE communication.event_outbox
    ADD COLUMN tenant_id text, ADD COLUMN message_id text, ADD COLUMN message_at timestamptz;
UPDATE communication.event_outbox o SET tenant_id = e.tenant_id, message_id = e.message_id, message_at = e.message_at
FROM communication.message_events e WHERE e.id = o.event_id;
DELETE FROM communication.event_outbox WHERE message_id IS NULL; -- its event is gone: nothing to publish
ALTER TABLE communication.event_outbox
    ALTER COLUMN tenant_id SET NOT NULL, ALTER COLUMN message_id SET NOT NULL, ALTER COLUMN message_at SET NOT NULL;

DROP TABLE communication.message_events_unpartitioned;

CREATE OR REPLACE FUNCTION communication.event_outbox_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO communication.event_outbox (event_id, tenant_id, message_id, message_at)
    SELECT id, tenant_id, message_id, message_at FROM new_events
    WHERE status IN ('queued', 'scheduled', 'sent', 'delivered', 'failed', 'undelivered', 'bounced',
                     'complained', 'opened', 'clicked', 'canceled');
    RETURN NULL;
END
$$;
CREATE TRIGGER message_events_outbox AFTER INSERT ON communication.message_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION communication.event_outbox_add();

-- Statistics for the new partitions, so that the first plans after the upgrade are informed ones.
ANALYZE communication.message_logs, communication.message_events, communication.event_outbox;
