-- Reliable dispatch: retries on delay tiers, per-tenant retry limits, circuit-breaker health,
-- and a queryable, replayable dead-letter index beside the comms.send.dlq topic.

-- A message waiting for its next attempt is 'queued' with next_attempt_at set; a claim before
-- then finds nothing to do. A replay restarts the retry budget: attempts keep counting (they
-- fence outcomes), so the budget counts from attempt_base and retry_since.
ALTER TABLE communication.message_logs
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN attempt_base    int NOT NULL DEFAULT 0,
    ADD COLUMN retry_since     timestamptz;

ALTER TABLE communication.tenants
    ADD COLUMN max_attempts      int NOT NULL DEFAULT 6 CHECK (max_attempts BETWEEN 1 AND 50),
    ADD COLUMN max_retry_age     interval NOT NULL DEFAULT '24 hours';

ALTER TABLE communication.message_events DROP CONSTRAINT message_events_source_check;
ALTER TABLE communication.message_events ADD CONSTRAINT message_events_source_check
    CHECK (source IN ('internal', 'provider', 'replay'));

CREATE TABLE communication.dead_letters (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id         text NOT NULL,
    tenant_id          text NOT NULL,
    channel            text NOT NULL,
    provider_type      text NOT NULL DEFAULT '',
    provider_config_id text NOT NULL DEFAULT '',
    error_code         text NOT NULL,
    error_message      text NOT NULL DEFAULT '',
    attempts           int NOT NULL,
    envelope           jsonb NOT NULL,
    failed_at          timestamptz NOT NULL DEFAULT now(),
    replayed_at        timestamptz,
    replay_id          text
);
CREATE INDEX dead_letters_tenant ON communication.dead_letters (tenant_id, failed_at);
CREATE INDEX dead_letters_failed ON communication.dead_letters (failed_at) WHERE replayed_at IS NULL;
CREATE INDEX dead_letters_message ON communication.dead_letters (message_id);

-- Who replayed what, when, with which filter: written in the replay's own transaction.
CREATE TABLE communication.dlq_replays (
    id       text PRIMARY KEY,
    actor    text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    filter   jsonb NOT NULL,
    dry_run  boolean NOT NULL,
    matched  int NOT NULL,
    replayed int NOT NULL
);
