-- A recipient reading an in_app message in its inbox (docs/inbox.md) is an event of the message,
-- status 'read', published as comms.message.read like the others.
CREATE OR REPLACE FUNCTION communication.event_outbox_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO communication.event_outbox (event_id, tenant_id, message_id, message_at)
    SELECT id, tenant_id, message_id, message_at FROM new_events
    WHERE status IN ('queued', 'scheduled', 'sent', 'delivered', 'failed', 'undelivered', 'bounced',
                     'complained', 'opened', 'clicked', 'canceled', 'received', 'read');
    RETURN NULL;
END
$$;
