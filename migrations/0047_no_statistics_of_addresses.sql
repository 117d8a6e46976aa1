-- The planner's statistics keep no address or content. ANALYZE (autovacuum's, or anyone's)
-- copies a sample of each column's values into pg_statistic: its most common values and its
-- histogram's bounds. For a recipient column that is a list of addresses, a frequent recipient's
-- among them, and an erasure cannot take them back: pg_statistic is written by ANALYZE alone
-- (or a superuser), and ANALYZE rarely runs again on a week that is no longer written. So the
-- columns that hold a person's address or the content sent to them (those the eraser blanks,
-- docs/recipients.md#erasure) and the index expressions over them get a statistics target of 0:
-- ANALYZE samples none of their values. No query plans on them: recipients are looked up by
-- their key's index and the tenant, which keep their statistics, and an equality on the key is
-- planned with PostgreSQL's default selectivity (half a percent), which still picks that index.

-- A partition takes its parent's statistics targets, columns and index expressions, wherever
-- the parent's are set. ALTER TABLE and ALTER INDEX ... SET STATISTICS on a partitioned table
-- reach the partitions it has; this function is for those made later, which start with the
-- default (create_partitions, and the partition indexes migrate builds, internal/db).
CREATE FUNCTION communication.inherit_statistics_targets(part regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT a.attname, pa.attstattarget FROM pg_inherits i
        JOIN pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attnum > 0 AND NOT pa.attisdropped AND pa.attstattarget >= 0
        JOIN pg_attribute a ON a.attrelid = part AND a.attname = pa.attname AND a.attstattarget IS DISTINCT FROM pa.attstattarget
        WHERE i.inhrelid = part
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', part, r.attname, r.attstattarget);
    END LOOP;
    FOR r IN
        SELECT ci.indexrelid::regclass AS idx, a.attnum, pa.attstattarget FROM pg_index ci
        JOIN pg_inherits i ON i.inhrelid = ci.indexrelid
        JOIN pg_attribute pa ON pa.attrelid = i.inhparent AND pa.attnum > 0 AND pa.attstattarget >= 0
        JOIN pg_attribute a ON a.attrelid = ci.indexrelid AND a.attnum = pa.attnum AND a.attstattarget IS DISTINCT FROM pa.attstattarget
        WHERE ci.indrelid = part
    LOOP
        EXECUTE format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS %s', r.idx, r.attnum, r.attstattarget);
    END LOOP;
END
$$;

-- As in 0041, and each week takes its table's statistics targets once attached (which also gives
-- it the parent's indexes).
CREATE OR REPLACE FUNCTION communication.create_partitions(parent text, first date, last date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    w       date;
    n       int := 0;
    name    text;
    storage text := (SELECT p.storage FROM communication.partitioned_tables p WHERE p.name = parent);
    opts    text := '';
BEGIN
    IF storage IS NULL THEN
        RAISE EXCEPTION '% is not a partitioned history table', parent;
    END IF;
    IF storage <> '' THEN
        opts := ' WITH (' || storage || ')';
    END IF;
    FOR w IN SELECT generate_series(date_trunc('week', first::timestamp), date_trunc('week', last::timestamp), interval '7 days')::date LOOP
        name := parent || '_p' || to_char(w, 'YYYYMMDD');
        IF to_regclass(format('communication.%I', name)) IS NULL THEN
            EXECUTE format('CREATE TABLE communication.%I (LIKE communication.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)%s',
                name, parent, opts);
            EXECUTE format('ALTER TABLE communication.%I ATTACH PARTITION communication.%I FOR VALUES FROM (%L) TO (%L)',
                parent, name, w::timestamp AT TIME ZONE 'UTC', (w + 7)::timestamp AT TIME ZONE 'UTC');
            PERFORM communication.inherit_statistics_targets(format('communication.%I', name)::regclass);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- A catalog change only (SHARE UPDATE EXCLUSIVE on each table and partition: readers and
-- writers do not wait for it).
ALTER TABLE communication.message_logs
    ALTER COLUMN recipient SET STATISTICS 0, ALTER COLUMN subject SET STATISTICS 0,
    ALTER COLUMN body_text SET STATISTICS 0, ALTER COLUMN body_html SET STATISTICS 0,
    ALTER COLUMN metadata SET STATISTICS 0, ALTER COLUMN error_message SET STATISTICS 0,
    ALTER COLUMN in_app SET STATISTICS 0, ALTER COLUMN push SET STATISTICS 0;
ALTER INDEX communication.message_logs_recipient_key ALTER COLUMN 1 SET STATISTICS 0; -- recipient_key(channel, recipient)
ALTER TABLE communication.message_events ALTER COLUMN reason SET STATISTICS 0, ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE communication.callbacks
    ALTER COLUMN recipient SET STATISTICS 0, ALTER COLUMN reason SET STATISTICS 0, ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE communication.dead_letters ALTER COLUMN error_message SET STATISTICS 0;
ALTER TABLE communication.webhook_deliveries ALTER COLUMN payload SET STATISTICS 0;
ALTER TABLE communication.webhook_attempts ALTER COLUMN response SET STATISTICS 0, ALTER COLUMN error SET STATISTICS 0;
ALTER TABLE communication.provider_errors_hourly ALTER COLUMN last_message SET STATISTICS 0;
ALTER TABLE communication.provider_errors_daily ALTER COLUMN last_message SET STATISTICS 0;
ALTER TABLE communication.recipients
    ALTER COLUMN email SET STATISTICS 0, ALTER COLUMN phone SET STATISTICS 0, ALTER COLUMN data SET STATISTICS 0;
ALTER INDEX communication.recipients_email ALTER COLUMN 2 SET STATISTICS 0; -- lower(email)
ALTER TABLE communication.suppressions ALTER COLUMN recipient SET STATISTICS 0;
ALTER TABLE communication.erasures ALTER COLUMN recipient SET STATISTICS 0;

-- What ANALYZE sampled before stays until ANALYZE would sample the column again, which it no
-- longer does: only a superuser may remove it, so a migrator that is one does
-- (docs/operations.md#partitions says what to run otherwise).
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        DELETE FROM pg_catalog.pg_statistic s USING pg_attribute a, pg_class c
        WHERE s.starelid = a.attrelid AND s.staattnum = a.attnum AND a.attstattarget = 0
          AND c.oid = a.attrelid AND c.relnamespace = 'communication'::regnamespace;
    ELSE
        RAISE NOTICE 'the statistics sampled before of the columns holding addresses stay until a superuser removes them (docs/operations.md#partitions)';
    END IF;
END
$$;
