-- Events out (docs/events.md): every message_events row of a published kind enters the event
-- outbox in the transaction that wrote it, so an event is published once its change committed and
-- never for a change that rolled back. A statement-level trigger reads the statement's new rows
-- at once, so the writers (intake, claims, outcomes, callbacks, replays, schedules) need no
-- change and a batch of 500 costs one extra insert, not 500.
CREATE TABLE communication.event_outbox (
    event_id bigint PRIMARY KEY -- message_events.id
);

CREATE FUNCTION communication.event_outbox_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO communication.event_outbox (event_id)
    SELECT id FROM new_events
    WHERE status IN ('queued', 'scheduled', 'sent', 'delivered', 'failed', 'undelivered', 'bounced',
                     'complained', 'opened', 'clicked', 'canceled');
    RETURN NULL;
END
$$;

CREATE TRIGGER message_events_outbox AFTER INSERT ON communication.message_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION communication.event_outbox_add();
