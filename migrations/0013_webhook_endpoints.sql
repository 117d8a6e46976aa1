-- Tenant webhook endpoints (docs/webhooks.md): each tenant's URLs, the events they take, and one
-- row per event delivered to an endpoint with every attempt made for it.
CREATE TABLE communication.webhook_endpoints (
    id                  text PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES communication.tenants (id),
    url                 text NOT NULL,
    description         text NOT NULL DEFAULT '',
    event_types         text[] NOT NULL DEFAULT '{}', -- empty: every type
    enabled             boolean NOT NULL DEFAULT true,
    disabled_reason     text NOT NULL DEFAULT '',
    -- The signing secret, sealed with the key ring like provider credentials; after a rotation
    -- the previous one keeps signing beside it until previous_expires_at.
    key_version         text NOT NULL,
    secret_sealed       bytea NOT NULL,
    previous_key_version text,
    previous_sealed     bytea,
    previous_expires_at timestamptz,
    -- Set by the first failed attempt after a success, cleared by the next success: an endpoint
    -- failing since five days ago is disabled.
    failing_since       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON communication.webhook_endpoints (tenant_id, id);

CREATE TABLE communication.webhook_deliveries (
    id               bigserial PRIMARY KEY,
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
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON communication.webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON communication.webhook_deliveries (endpoint_id, id);

CREATE TABLE communication.webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES communication.webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at timestamptz NOT NULL,
    status_code  int, -- null: no response (refused, timed out, connection failed)
    latency_ms   int NOT NULL,
    response     text NOT NULL DEFAULT '', -- the start of the response body
    error        text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery ON communication.webhook_attempts (delivery_id, id);

-- A replay is remembered by its filter, so asking for the same one again queues nothing new.
CREATE TABLE communication.webhook_replays (
    endpoint_id text NOT NULL REFERENCES communication.webhook_endpoints (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    until       timestamptz NOT NULL, -- 'infinity' when open
    status      text NOT NULL,        -- '' for any
    queued      int NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint_id, since, until, status)
);
