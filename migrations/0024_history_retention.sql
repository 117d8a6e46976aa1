-- History retention (docs/operations.md#history-retention): a tenant's messages, their events,
-- callbacks, provider references, dead letters and webhook deliveries are kept for its
-- history_retention (default 90 days) after the message was created, then deleted by the history
-- purger; its audit entries for its audit_retention (default 400 days). The usage rollups are the
-- bill and are never deleted.
ALTER TABLE communication.tenants
    ADD COLUMN history_retention interval NOT NULL DEFAULT interval '90 days'
        CHECK (history_retention >= interval '1 day' AND history_retention <= interval '3650 days'),
    ADD COLUMN audit_retention interval NOT NULL DEFAULT interval '400 days'
        CHECK (audit_retention >= interval '30 days' AND audit_retention <= interval '3650 days');

-- The audit log stays append-only, except that an entry past its retention may be deleted: its
-- tenant's audit_retention, or 400 days for platform-wide entries and those of a deleted tenant.
CREATE OR REPLACE FUNCTION communication.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.at < now() - coalesce(
            (SELECT audit_retention FROM communication.tenants WHERE id = OLD.tenant_id), interval '400 days') THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The audit purger walks the log in time order.
CREATE INDEX audit_log_at ON communication.audit_log (at);
