-- Usage and cost (docs/usage.md). Every counted transition enters usage_deltas in the statement
-- or transaction that makes it: the intake's insert (accepted), the worker's outcome batch
-- (attempts, sent, failed, segments, cost) and the callback transaction (delivered, bounced, and
-- failures the provider reports after sending). Plain inserts into a table without indexes, which
-- concurrent batches never wait on; store.FoldAnalytics moves them into usage_daily, delete and
-- upsert in one statement, and readers add what is not folded yet, so every answer is exact.
CREATE TABLE communication.usage_daily (
    tenant_id          text NOT NULL,
    day                date NOT NULL, -- UTC
    channel            text NOT NULL,
    provider_config_id text NOT NULL DEFAULT '', -- '' until a provider handled the message
    template_key       text NOT NULL DEFAULT '', -- '' for ad-hoc bodies
    category           text NOT NULL,
    currency           text NOT NULL DEFAULT '', -- of cost; '' where nothing cost anything
    accepted           bigint NOT NULL DEFAULT 0,
    -- what quotas count: one per email, the segments of each SMS, at acceptance
    accepted_units     bigint NOT NULL DEFAULT 0,
    attempts           bigint NOT NULL DEFAULT 0,
    sent               bigint NOT NULL DEFAULT 0,
    delivered          bigint NOT NULL DEFAULT 0,
    failed             bigint NOT NULL DEFAULT 0,
    bounced            bigint NOT NULL DEFAULT 0,
    segments           bigint NOT NULL DEFAULT 0, -- billable: the segments of sent SMS
    cost               numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, channel, provider_config_id, template_key, category, currency)
);
CREATE TABLE communication.usage_deltas (LIKE communication.usage_daily INCLUDING DEFAULTS);

-- A unit price for providers that report none: per email, or per SMS segment.
ALTER TABLE communication.provider_configs
    ADD COLUMN unit_price    numeric CHECK (unit_price >= 0),
    ADD COLUMN unit_currency text NOT NULL DEFAULT '',
    ADD CONSTRAINT provider_configs_unit_currency CHECK ((unit_price IS NULL) = (unit_currency = ''));

-- Where a message's cost came from: 'provider' (reported), 'unit_price' (configured), or ''.
ALTER TABLE communication.message_logs ADD COLUMN cost_source text NOT NULL DEFAULT '';

-- Sent messages whose provider prices them only after sending (Twilio): the pricer fetches the
-- price, replaces any unit-price estimate with it, and moves the difference into usage.
CREATE TABLE communication.price_checks (
    message_id          text PRIMARY KEY,
    tenant_id           text NOT NULL,
    provider_config_id  text NOT NULL,
    provider_message_id text NOT NULL,
    due_at              timestamptz NOT NULL,
    tries               int NOT NULL DEFAULT 0
);
CREATE INDEX price_checks_due ON communication.price_checks (due_at);
