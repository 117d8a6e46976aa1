---- tern: disable-tx ----
-- Built concurrently, beside live traffic (docs/operations.md#migrations). Each index is dropped
-- first, so a run that failed half-way (leaving an invalid index) builds it again. A concurrent
-- build blocks no writer, so it may take as long as the table needs: no statement_timeout (tern
-- resets the session after the file).
SET statement_timeout = 0;

-- A recipient's messages by the recipient's key, not by the address as written: the eraser finds
-- "Ann <Ann@Example.com>" by ann@example.com, and so does GET /v1/messages?recipient=.
DROP INDEX CONCURRENTLY IF EXISTS communication.message_logs_tenant_recipient_key;
CREATE INDEX CONCURRENTLY message_logs_tenant_recipient_key
    ON communication.message_logs (tenant_id, communication.recipient_key(channel, recipient), created_at DESC);
DROP INDEX CONCURRENTLY IF EXISTS communication.message_logs_tenant_recipient;

-- A message's callbacks, for the eraser.
DROP INDEX CONCURRENTLY IF EXISTS communication.callbacks_message;
CREATE INDEX CONCURRENTLY callbacks_message ON communication.callbacks (message_id) WHERE message_id IS NOT NULL;
