-- Scheduled sends: a message with send_at is 'scheduled' until due, then queued as any other;
-- it may be 'canceled' before. Its due time lives here, not in Kafka (whose retention is shorter
-- than 30 days) nor in memory, so it survives restarts of every process. A scheduled message has
-- no outbox row until it is due, so the sweeper never publishes it early.
ALTER TABLE communication.message_logs DROP CONSTRAINT message_logs_status_check;
ALTER TABLE communication.message_logs ADD CONSTRAINT message_logs_status_check
    CHECK (status IN ('scheduled', 'queued', 'sending', 'sent', 'delivered', 'failed', 'undelivered', 'bounced', 'complained', 'canceled'));
ALTER TABLE communication.message_logs ADD COLUMN scheduled_at timestamptz;

CREATE TABLE communication.schedule (
    message_id text PRIMARY KEY,
    tenant_id  text NOT NULL,
    due_at     timestamptz NOT NULL
);
CREATE INDEX schedule_due ON communication.schedule (due_at);
