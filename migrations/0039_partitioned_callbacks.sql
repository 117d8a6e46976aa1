-- Provider callbacks and provider message references are range-partitioned by UTC week too
-- (docs/operations.md#partitions), so that they go by dropping a week's partitions rather than by
-- deleting the rows of each expired message: that delete was nearly all of a week's drop (2 to 3 s
-- a week of a million-message history). A callback's week is the week it was received
-- (received_week, the Monday of received_at); a reference's, the week its message was sent
-- (created_at). Each refers only to
-- messages made before its week ended, so a week of them is dropped as soon as it ends before every
-- tenant's history horizon (Store.DropExpiredPartitions).
--
-- Neither table knows its rows' tenant when they are written (a callback names a provider config,
-- which may be a system default, and its provider's message id); their keys lead with the
-- provider config. A partitioned table holds a unique key only with its partition key, so a
-- provider's retry is recognised by (provider_config_id, event_key, received_week) within a week,
-- and by the insert's look at the week before across a Monday (Store.InsertCallbacks).
--
-- Like 0027, this rewrites both tables in one transaction, blocking their writers for as long as
-- the copy takes; docs/operations.md#partitions says how to shrink the copy first.

SET LOCAL statement_timeout = 0;

INSERT INTO communication.partitioned_tables (name, storage) VALUES
    ('callbacks', ''),
    ('provider_message_refs', '');

-- provider_message_refs ---------------------------------------------------------------------

ALTER TABLE communication.provider_message_refs RENAME TO provider_message_refs_unpartitioned;
ALTER TABLE communication.provider_message_refs_unpartitioned
    RENAME CONSTRAINT provider_message_refs_pkey TO provider_message_refs_unpartitioned_pkey;
CREATE TABLE communication.provider_message_refs (
    provider_config_id  text NOT NULL,
    provider_message_id text NOT NULL,
    tenant_id           text NOT NULL,
    message_id          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- A lookup names the config and the provider's id and reads the newest week first.
    PRIMARY KEY (provider_config_id, provider_message_id, created_at)
) PARTITION BY RANGE (created_at);

SELECT communication.create_partitions('provider_message_refs',
    least(coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.provider_message_refs_unpartitioned), current_date),
          coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.message_logs), current_date)),
    (now() AT TIME ZONE 'UTC')::date + 14);
INSERT INTO communication.provider_message_refs (provider_config_id, provider_message_id, tenant_id, message_id, created_at)
SELECT provider_config_id, provider_message_id, tenant_id, message_id, created_at
FROM communication.provider_message_refs_unpartitioned;
DROP TABLE communication.provider_message_refs_unpartitioned;

-- callbacks ---------------------------------------------------------------------------------

ALTER TABLE communication.callbacks RENAME TO callbacks_unpartitioned;
ALTER SEQUENCE communication.callbacks_id_seq RENAME TO callbacks_unpartitioned_id_seq;
ALTER INDEX communication.callbacks_pending RENAME TO callbacks_unpartitioned_pending;
ALTER INDEX communication.callbacks_message RENAME TO callbacks_unpartitioned_message;
ALTER TABLE communication.callbacks_unpartitioned RENAME CONSTRAINT callbacks_pkey TO callbacks_unpartitioned_pkey;

CREATE TABLE communication.callbacks (
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    provider_config_id  text NOT NULL,
    provider_type       text NOT NULL,
    event_key           text NOT NULL,
    provider_message_id text NOT NULL,
    status              text NOT NULL,
    error_code          text NOT NULL DEFAULT '',
    provider_code       text NOT NULL DEFAULT '',
    reason              text NOT NULL DEFAULT '',
    recipient           text NOT NULL DEFAULT '',
    suppress            text NOT NULL DEFAULT '' CHECK (suppress IN ('', 'bounce', 'complaint')),
    occurred_at         timestamptz NOT NULL,
    payload             jsonb NOT NULL,
    received_at         timestamptz NOT NULL DEFAULT now(),
    received_week       timestamptz NOT NULL DEFAULT date_trunc('week', now(), 'UTC'), -- the partition key
    tries               int NOT NULL DEFAULT 0,
    next_try_at         timestamptz NOT NULL DEFAULT now(),
    applied_at          timestamptz,
    message_id          text,
    outcome             text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'applied', 'unmatched')),
    PRIMARY KEY (id, received_week),
    UNIQUE (provider_config_id, event_key, received_week)
) PARTITION BY RANGE (received_week);

SELECT communication.create_partitions('callbacks',
    least(coalesce((SELECT min(received_at AT TIME ZONE 'UTC')::date FROM communication.callbacks_unpartitioned), current_date),
          coalesce((SELECT min(created_at AT TIME ZONE 'UTC')::date FROM communication.message_logs), current_date)),
    (now() AT TIME ZONE 'UTC')::date + 14);
INSERT INTO communication.callbacks (id, provider_config_id, provider_type, event_key, provider_message_id, status, error_code,
                                     provider_code, reason, recipient, suppress, occurred_at, payload, received_at, received_week,
                                     tries, next_try_at, applied_at, message_id, outcome)
OVERRIDING SYSTEM VALUE
SELECT id, provider_config_id, provider_type, event_key, provider_message_id, status, error_code, provider_code, reason,
       recipient, suppress, occurred_at, payload, received_at, date_trunc('week', received_at, 'UTC'), tries, next_try_at,
       applied_at, message_id, outcome
FROM communication.callbacks_unpartitioned;
SELECT setval(pg_get_serial_sequence('communication.callbacks', 'id'),
              coalesce((SELECT max(id) FROM communication.callbacks_unpartitioned), 0) + 1, false);
DROP TABLE communication.callbacks_unpartitioned;

CREATE INDEX callbacks_pending ON communication.callbacks (next_try_at) WHERE outcome = 'pending';
-- A message's callbacks, for the eraser and the history purger.
CREATE INDEX callbacks_message ON communication.callbacks (message_id) WHERE message_id IS NOT NULL;
-- Unmatched callbacks, for the purger and the ops listing.
CREATE INDEX callbacks_unmatched ON communication.callbacks (received_at) WHERE outcome = 'unmatched';

ANALYZE communication.callbacks, communication.provider_message_refs;
