---- tern: disable-tx ----
-- A delivery says whether it is filed under its event's time (filed_late false) or elsewhere
-- (webhooks.deliveryTime: its publication's, when that is more than a week after the event or
-- the event's time is over an hour ahead of it). The eraser then finds an event's deliveries
-- with one probe of the event's week, plus the partial index below for the others, instead of
-- probing every week from a week before the message on (docs/benchmarks.md).
--
-- The deliveries already kept read false without being rewritten (the column's default when it
-- is added), and the pass at the end flags those of them filed elsewhere. The default is then
-- dropped: a release that does not know the flag (its pods still running while this one rolls
-- out) writes NULL, which the eraser treats as filed elsewhere, so nothing such a pod files is
-- missed.
ALTER TABLE communication.webhook_deliveries ADD COLUMN IF NOT EXISTS filed_late boolean DEFAULT false;
ALTER TABLE communication.webhook_deliveries ALTER COLUMN filed_late DROP DEFAULT;

-- Built on each week by migrate after the files (db.CompletePartitionIndexes).
CREATE INDEX IF NOT EXISTS webhook_deliveries_filed_late
    ON ONLY communication.webhook_deliveries (tenant_id, event_id) WHERE filed_late IS NOT FALSE;

-- The pass: a delivery's body is its CloudEvent, whose time is its event's (an erased one's body
-- is jsonb's text, with a space after the colon). It reads every delivery once and rewrites only
-- those filed elsewhere (few: an event published over a week late, or a provider's clock an hour
-- ahead), locking only those, so deliveries go on meanwhile: 1,360,000 deliveries took 15 s on
-- the project's benchmark machine. It runs a week at a time, each committed, so that no snapshot
-- is held for the whole pass (vacuum goes on cleaning the busy tables), and without the
-- migration's statement_timeout.
SET statement_timeout = 0;
DO $$
DECLARE
    week regclass;
BEGIN
    FOR week IN SELECT inhrelid::regclass FROM pg_inherits
                WHERE inhparent = 'communication.webhook_deliveries'::regclass ORDER BY inhrelid::regclass::text LOOP
        EXECUTE format($pass$
            UPDATE %s SET filed_late = true
            WHERE filed_late IS FALSE
              AND created_at IS DISTINCT FROM (substring(convert_from(payload, 'UTF8')
                    FROM '"time": ?"(\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d))"'))::timestamptz$pass$, week);
        COMMIT;
    END LOOP;
END
$$;
