-- Templates for the push and in_app channels (their subject renders the title, their text the
-- body), and the inbox's reads counted in the hourly rollup beside sent, delivered and opened:
-- the read rate of docs/inbox.md. templates is small; the counters are columns with a constant
-- default, which PostgreSQL adds without rewriting the table.
ALTER TABLE communication.templates DROP CONSTRAINT IF EXISTS templates_channel_check,
    ADD CONSTRAINT templates_channel_check CHECK (channel IN ('sms', 'email', 'push', 'in_app'));

ALTER TABLE communication.analytics_hourly ADD COLUMN IF NOT EXISTS read bigint NOT NULL DEFAULT 0;
ALTER TABLE communication.analytics_deltas ADD COLUMN IF NOT EXISTS read bigint NOT NULL DEFAULT 0;
