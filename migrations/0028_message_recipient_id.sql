---- tern: disable-tx ----
-- The recipient profile a message was sent to (POST /v1/messages {"recipient": "u_123"}), and
-- the index behind GET /v1/messages?recipient=u_123.
--
-- The column comes without a default, so adding it rewrites nothing. The index is declared
-- ON ONLY the partitioned table, which is instant and leaves it invalid; migrate then builds
-- it on each partition with CREATE INDEX CONCURRENTLY, blocking no writer, and attaches each,
-- which makes it valid (db.CompletePartitionIndexes, docs/operations.md#migrations). Partitions
-- made after this have it from the start.
ALTER TABLE communication.message_logs ADD COLUMN IF NOT EXISTS recipient_id text;
CREATE INDEX IF NOT EXISTS message_logs_recipient_id
    ON ONLY communication.message_logs (tenant_id, recipient_id, created_at DESC, id DESC)
    WHERE recipient_id IS NOT NULL;
