---- tern: disable-tx ----
-- The in_app channel (docs/inbox.md): a message for a recipient's inbox in comms itself. Its title
-- and body are the subject and body_text; in_app holds its link and data; the recipient's reading
-- is seen_at, read_at and archived_at. Inboxes are listed through the recipient-key index (for an
-- in_app message the recipient is the profile's id).
--
-- Outside a transaction, statement by statement, as 0030: the channel check is replaced NOT VALID
-- (a moment's lock) and then validated, which reads the history without blocking writers.
SET statement_timeout = 0;

-- Nullable columns without defaults: adding them rewrites nothing.
ALTER TABLE communication.message_logs
    ADD COLUMN IF NOT EXISTS in_app      jsonb,
    ADD COLUMN IF NOT EXISTS seen_at     timestamptz,
    ADD COLUMN IF NOT EXISTS read_at     timestamptz,
    ADD COLUMN IF NOT EXISTS archived_at timestamptz;

ALTER TABLE communication.message_logs DROP CONSTRAINT IF EXISTS message_logs_channel_check,
    ADD CONSTRAINT message_logs_channel_check CHECK (channel IN ('sms', 'email', 'in_app')) NOT VALID;
ALTER TABLE communication.message_logs VALIDATE CONSTRAINT message_logs_channel_check;
