-- The spine: tenants, API keys, provider configs, messages and their events.
-- Every table lives in schema "communication"; every tenant-owned row carries tenant_id.

CREATE TABLE communication.tenants (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    plan                  text NOT NULL DEFAULT 'free',
    -- whether the platform's system-default providers may send for this tenant
    allow_system_fallback boolean NOT NULL DEFAULT true,
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE communication.api_keys (
    id         text PRIMARY KEY,
    -- tenant keys belong to one tenant; service and admin keys to none
    tenant_id  text REFERENCES communication.tenants (id),
    kind       text NOT NULL CHECK (kind IN ('tenant', 'service', 'admin')),
    name       text NOT NULL,
    prefix     text NOT NULL,
    key_hash   bytea NOT NULL UNIQUE, -- SHA-256 of the whole key; the key itself is never stored
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    CHECK ((kind = 'tenant') = (tenant_id IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON communication.api_keys (tenant_id);

CREATE TABLE communication.provider_configs (
    id               text PRIMARY KEY,
    tenant_id        text REFERENCES communication.tenants (id), -- NULL = system default
    type             text NOT NULL,
    name             text NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('sms', 'email')),
    settings         jsonb NOT NULL DEFAULT '{}', -- non-secret settings (the sandbox's latency)
    encrypted_config bytea,
    key_version      text,
    mask             text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL DEFAULT true,
    priority         int NOT NULL DEFAULT 0,
    health           text NOT NULL DEFAULT 'healthy',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_configs_route ON communication.provider_configs (tenant_id, channel, priority);

-- The hot tables (message_logs, message_events) carry no foreign keys: each check takes a
-- FOR KEY SHARE lock on the referenced row, so concurrent batches pile MultiXacts onto the same
-- tenant and message rows (measured: about 10% of intake throughput). The store writes a message,
-- its events and its outbox row in one statement, and tenants are suspended, never deleted.
CREATE TABLE communication.message_logs (
    id                  text PRIMARY KEY,
    tenant_id           text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient           text NOT NULL,
    sender              text NOT NULL DEFAULT '',
    subject             text NOT NULL DEFAULT '',
    body_text           text NOT NULL DEFAULT '',
    body_html           text NOT NULL DEFAULT '',
    metadata            jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'bounced')),
    attempts            int NOT NULL DEFAULT 0,
    idempotency_key     text,
    provider_config_id  text,
    provider_type       text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    error_code          text NOT NULL DEFAULT '',
    error_message       text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    -- while status = 'sending': the claiming worker's deadline; after it the sweeper re-publishes
    lease_expires_at    timestamptz,
    sent_at             timestamptz
-- No index may name a column that dispatch updates (status, attempts, lease, provider, error,
-- timestamps): then those updates are HOT and touch no index, and fillfactor leaves them room.
) WITH (fillfactor = 70);
CREATE INDEX message_logs_tenant_created ON communication.message_logs (tenant_id, created_at DESC, id DESC);
CREATE INDEX message_logs_tenant_recipient ON communication.message_logs (tenant_id, recipient, created_at DESC);

-- The outbox: one narrow row per message that is not final yet, inserted with the message and
-- deleted with its final outcome. The sweeper searches only this table, so it stays small.
CREATE TABLE communication.dispatch_queue (
    message_id   text PRIMARY KEY,
    tenant_id    text NOT NULL,
    created_at   timestamptz NOT NULL,
    -- set once the intent is on comms.send (acks=all); NULL rows are the sweeper's to publish
    published_at timestamptz
) WITH (fillfactor = 70);
-- Under a backlog most rows are published and waiting: the partial index keeps the per-second
-- search for unpublished rows independent of the backlog.
CREATE INDEX dispatch_queue_unpublished ON communication.dispatch_queue (created_at) WHERE published_at IS NULL;

-- The truth for Idempotency-Key: one row per (tenant, key) for 24 hours (the sweeper deletes
-- older rows, after which a key may be reused).
CREATE TABLE communication.idempotency_keys (
    tenant_id    text NOT NULL,
    key          text NOT NULL,
    message_id   text NOT NULL,
    request_hash bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON communication.idempotency_keys (created_at);

-- Immutable: one row per status transition or attempt outcome.
CREATE TABLE communication.message_events (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id         text NOT NULL,
    tenant_id          text NOT NULL,
    status             text NOT NULL,
    attempt            int NOT NULL DEFAULT 0,
    source             text NOT NULL CHECK (source IN ('internal', 'provider')),
    provider_config_id text,
    error_code         text NOT NULL DEFAULT '',
    reason             text NOT NULL DEFAULT '',
    payload            jsonb,
    occurred_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_events_message ON communication.message_events (message_id, id);
