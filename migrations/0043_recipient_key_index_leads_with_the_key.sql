---- tern: disable-tx ----
-- The recipient-key index leads with the key, then the tenant: (recipient_key, tenant_id,
-- created_at DESC) instead of (tenant_id, recipient_key, created_at DESC). It serves what it
-- served (the eraser's and GET /v1/messages?recipient='s lookups name both, then read by time),
-- and it can no longer serve a lookup of a message by tenant, id and time. On a week with no rows
-- and no statistics (every Monday's, a new database's) the planner costs the old index and the
-- primary key the same for that lookup, to the hundredth, and a generic plan cached then could
-- take the old index and read the tenant's whole week in it for every message it looks up: 54
-- index pages a message for the outcome in TestDispatchStatementsDoNotScanMessageLogsAsItGrows,
-- against about 8.
--
-- The new index is declared ON ONLY the partitioned table (instant); migrate then builds it on
-- each week with CREATE INDEX CONCURRENTLY and attaches it (db.CompletePartitionIndexes). The old
-- one is dropped here, which takes message_logs' lock for a moment (under migrate's lock_timeout):
-- until the builds finish, a recipient's messages are found without an index
-- (docs/operations.md#migrations).
CREATE INDEX IF NOT EXISTS message_logs_recipient_key
    ON ONLY communication.message_logs (communication.recipient_key(channel, recipient), tenant_id, created_at DESC);
DROP INDEX IF EXISTS communication.message_logs_tenant_recipient_key;
