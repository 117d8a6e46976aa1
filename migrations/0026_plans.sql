-- Plans (docs/operations.md#history-retention): each plan's retention defaults, taken by a tenant
-- when it is created on the plan or moved to it (a retention the same change names wins). NULL:
-- the global default (content 30 days, history 90, audit 400) at creation, the tenant's own on a
-- move.
CREATE TABLE communication.plans (
    name              text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    content_retention interval CHECK (content_retention >= interval '0' AND content_retention <= interval '3650 days'),
    history_retention interval CHECK (history_retention >= interval '1 day' AND history_retention <= interval '3650 days'),
    audit_retention   interval CHECK (audit_retention >= interval '30 days' AND audit_retention <= interval '3650 days'),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER plans_audit AFTER INSERT OR UPDATE OR DELETE ON communication.plans
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('plan', 'name');
