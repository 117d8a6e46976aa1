---- tern: disable-tx ----
-- Inbound SMS (docs/recipients.md#inbound-sms): a message a person sends to one of a tenant's
-- numbers is stored as a message with direction 'inbound' and status 'received', and publishes
-- comms.message.received; a STOP suppresses the sender with reason 'stop'.
--
-- Outside a transaction, statement by statement: the status check is replaced NOT VALID (a
-- moment's lock) and then validated, which reads the history without blocking writers.
SET statement_timeout = 0;

-- A constant default rewrites nothing: every existing message reads as outbound.
ALTER TABLE communication.message_logs ADD COLUMN IF NOT EXISTS direction text NOT NULL DEFAULT 'outbound';

ALTER TABLE communication.message_logs DROP CONSTRAINT IF EXISTS message_logs_status_check,
    ADD CONSTRAINT message_logs_status_check CHECK (status IN ('scheduled', 'queued', 'sending', 'sent', 'delivered', 'failed',
        'undelivered', 'bounced', 'complained', 'canceled', 'received')) NOT VALID;
ALTER TABLE communication.message_logs VALIDATE CONSTRAINT message_logs_status_check;

ALTER TABLE communication.suppressions DROP CONSTRAINT IF EXISTS suppressions_reason_check,
    ADD CONSTRAINT suppressions_reason_check CHECK (reason IN ('bounce', 'complaint', 'manual', 'stop'));

CREATE OR REPLACE FUNCTION communication.event_outbox_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO communication.event_outbox (event_id, tenant_id, message_id, message_at)
    SELECT id, tenant_id, message_id, message_at FROM new_events
    WHERE status IN ('queued', 'scheduled', 'sent', 'delivered', 'failed', 'undelivered', 'bounced',
                     'complained', 'opened', 'clicked', 'canceled', 'received');
    RETURN NULL;
END
$$;
