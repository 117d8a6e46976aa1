-- Content retention (docs/operations.md#content-retention): a message's subject and bodies (one-
-- time codes included) are kept for the tenant's content_retention after the message was created
-- (0: until it is final), then blanked by the content purger; the message row, its status and
-- timeline stay for the billing and the history.
ALTER TABLE communication.tenants
    ADD COLUMN content_retention interval NOT NULL DEFAULT interval '30 days'
        CHECK (content_retention >= interval '0' AND content_retention <= interval '3650 days');

-- When the purger blanked the message's content; NULL while it is kept.
ALTER TABLE communication.message_logs ADD COLUMN content_purged_at timestamptz;

-- How far each tenant's messages are purged: every message at or before (through_at, through_id)
-- in (created_at, id) order was looked at once.
CREATE TABLE communication.content_purge (
    tenant_id  text PRIMARY KEY,
    through_at timestamptz NOT NULL,
    through_id text NOT NULL
);

-- Messages passed while still to be sent (scheduled, queued, sending): purged once they are final.
CREATE TABLE communication.content_purge_deferred (
    tenant_id  text NOT NULL,
    message_id text NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
