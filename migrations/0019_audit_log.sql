-- The audit log (docs/audit.md): who changed what, written by triggers in the transaction of the
-- change. The actor is the session setting comms.actor, which the service sets (db.WithActor)
-- on the connection of each request through the API or commsctl; changes the service makes on its
-- own (health, deliveries, callbacks) carry no actor and are not audited.
CREATE TABLE communication.audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    tenant_id   text,              -- the tenant concerned; NULL for platform-wide changes
    actor_kind  text NOT NULL,     -- tenant, service or admin (an API key), or cli (an OS user)
    actor_id    text NOT NULL,     -- the key id, or the OS user
    request_id  text NOT NULL DEFAULT '',
    action      text NOT NULL,     -- <target_type>.<created|updated|deleted|revoked|archived|tested|...>
    target_type text NOT NULL,
    target_id   text NOT NULL,
    before      jsonb,             -- the row before and after, secrets masked
    after       jsonb
);
CREATE INDEX audit_log_tenant ON communication.audit_log (tenant_id, id DESC);

-- Append-only for every role, the owner's included: rows are never updated or deleted.
CREATE FUNCTION communication.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON communication.audit_log
    FOR EACH ROW EXECUTE FUNCTION communication.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON communication.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION communication.audit_log_append_only();

-- audit_action records one action by the session's actor (none: nothing), for changes that are
-- not a row of an audited table (a test send, a retry of unmatched callbacks).
CREATE FUNCTION communication.audit_action(action text, target_type text, target_id text, tenant text, after jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    actor jsonb := nullif(current_setting('comms.actor', true), '')::jsonb;
BEGIN
    IF actor IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO communication.audit_log (tenant_id, actor_kind, actor_id, request_id, action, target_type, target_id, after)
    VALUES (coalesce(tenant, actor->>'tenant_id'), actor->>'kind', actor->>'id', coalesce(actor->>'request_id', ''),
            action, target_type, target_id, after);
END
$$;

-- audit_row audits a row change. Arguments: the target type, the id columns (comma-separated),
-- then the columns to mask. Updates that change only bookkeeping columns are not audited.
CREATE FUNCTION communication.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor   jsonb := nullif(current_setting('comms.actor', true), '')::jsonb;
    old_row jsonb;
    new_row jsonb;
    r       jsonb;
    col     text;
    verb    text := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    target  text;
    noise   text[] := ARRAY['updated_at', 'last_used_at', 'last_tested_at', 'health', 'health_reason', 'failing_since', 'revision'];
BEGIN
    IF actor IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (old_row - noise) = (new_row - noise) THEN
            RETURN NULL;
        END IF;
        IF old_row->'revoked_at' = 'null' AND new_row->'revoked_at' <> 'null' THEN verb := 'revoked'; END IF;
        IF old_row->'archived_at' = 'null' AND new_row->'archived_at' <> 'null' THEN verb := 'archived'; END IF;
    END IF;
    IF TG_NARGS > 2 THEN
        FOREACH col IN ARRAY TG_ARGV[2:] LOOP
            IF old_row->col <> 'null' THEN old_row := old_row || jsonb_build_object(col, '***'); END IF;
            IF new_row->col <> 'null' THEN new_row := new_row || jsonb_build_object(col, '***'); END IF;
        END LOOP;
    END IF;
    r := coalesce(new_row, old_row);
    SELECT string_agg(r->>c, '/') INTO target FROM unnest(string_to_array(TG_ARGV[1], ',')) AS c;
    INSERT INTO communication.audit_log (tenant_id, actor_kind, actor_id, request_id, action, target_type, target_id, before, after)
    VALUES (coalesce(CASE WHEN TG_ARGV[0] = 'tenant' THEN r->>'id' ELSE r->>'tenant_id' END, r->'filter'->>'tenant_id', actor->>'tenant_id'),
            actor->>'kind', actor->>'id', coalesce(actor->>'request_id', ''), TG_ARGV[0] || '.' || verb, TG_ARGV[0], coalesce(target, ''),
            old_row, new_row);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_audit AFTER INSERT OR UPDATE OR DELETE ON communication.tenants
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('tenant', 'id');
CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON communication.api_keys
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('api_key', 'id', 'key_hash');
CREATE TRIGGER provider_configs_audit AFTER INSERT OR UPDATE OR DELETE ON communication.provider_configs
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('provider_config', 'id', 'encrypted_config');
CREATE TRIGGER suppressions_audit AFTER INSERT OR UPDATE OR DELETE ON communication.suppressions
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('suppression', 'channel,recipient');
CREATE TRIGGER templates_audit AFTER INSERT OR UPDATE OR DELETE ON communication.templates
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('template', 'key');
CREATE TRIGGER template_versions_audit AFTER INSERT OR UPDATE OR DELETE ON communication.template_versions
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('template_version', 'template_key,version');
CREATE TRIGGER template_active_versions_audit AFTER INSERT OR UPDATE OR DELETE ON communication.template_active_versions
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('template_activation', 'template_key,locale');
CREATE TRIGGER webhook_endpoints_audit AFTER INSERT OR UPDATE OR DELETE ON communication.webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('webhook_endpoint', 'id', 'secret_sealed', 'previous_sealed');
CREATE TRIGGER webhook_replays_audit AFTER INSERT ON communication.webhook_replays
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('webhook_replay', 'endpoint_id');
CREATE TRIGGER dlq_replays_audit AFTER INSERT ON communication.dlq_replays
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('dlq_replay', 'id');
