---- tern: disable-tx ----
-- The push channel (docs/push.md): a message for the devices of a recipient profile. Its title
-- and body are the subject and body_text; push holds the rest of its content. Each device it goes
-- to is a row of push_deliveries.
--
-- Outside a transaction, statement by statement, as 0032: each channel check is replaced NOT
-- VALID (a moment's lock) and then validated, which reads the table without blocking writers.
SET statement_timeout = 0;

-- A nullable column without a default: adding it rewrites nothing.
ALTER TABLE communication.message_logs ADD COLUMN IF NOT EXISTS push jsonb;

ALTER TABLE communication.message_logs DROP CONSTRAINT IF EXISTS message_logs_channel_check,
    ADD CONSTRAINT message_logs_channel_check CHECK (channel IN ('sms', 'email', 'in_app', 'push')) NOT VALID;
ALTER TABLE communication.message_logs VALIDATE CONSTRAINT message_logs_channel_check;

ALTER TABLE communication.provider_configs DROP CONSTRAINT IF EXISTS provider_configs_channel_check,
    ADD CONSTRAINT provider_configs_channel_check CHECK (channel IN ('sms', 'email', 'push')) NOT VALID;
ALTER TABLE communication.provider_configs VALIDATE CONSTRAINT provider_configs_channel_check;

-- One row per device a push message went to, or tried to. A retry of the message sends only to
-- the devices whose row is 'retrying' (or that have none yet), so no device gets it twice.
-- device_id stays after the device is removed: the row is the history of what was sent. Rows go
-- with their message's week (store.DropExpiredPartitions).
CREATE TABLE IF NOT EXISTS communication.push_deliveries (
    tenant_id           text NOT NULL,
    message_id          text NOT NULL,
    device_id           text NOT NULL,
    platform            text NOT NULL,
    provider_config_id  text NOT NULL DEFAULT '',
    provider_type       text NOT NULL DEFAULT '',
    status              text NOT NULL CHECK (status IN ('sent', 'retrying', 'failed', 'removed')),
    provider_message_id text NOT NULL DEFAULT '',
    error_code          text NOT NULL DEFAULT '',
    error_message       text NOT NULL DEFAULT '',
    attempt             int NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id, device_id)
);
