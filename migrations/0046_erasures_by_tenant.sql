-- GET /v1/erasures lists a tenant's erasures, newest first. erasures is small (a row for each
-- person a tenant asked to forget), so the index is built in the migration's transaction.
CREATE INDEX erasures_tenant_created ON communication.erasures (tenant_id, created_at DESC, id DESC);
