-- Weeks are made ahead without holding up writers (docs/operations.md#partitions): CREATE TABLE
-- ... PARTITION OF takes an ACCESS EXCLUSIVE lock on the parent, so while it waited for a
-- transaction reading the table (an event publisher's, held across its Kafka produce) every
-- statement on the table queued behind it. A week is now made as a table of its own and attached,
-- which takes a SHARE UPDATE EXCLUSIVE lock that writers and readers do not wait for; an empty
-- table is attached without a scan.
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
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
