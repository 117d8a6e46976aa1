-- The devices a recipient receives push notifications on (docs/push.md#devices): an FCM
-- registration token, an APNs device token, or a browser's Web Push subscription (its endpoint
-- in token, its keys beside it). A token belongs to one profile of a tenant: registering it again,
-- for another profile after a sign-in on a shared device, moves it.
CREATE TABLE communication.devices (
    tenant_id    text NOT NULL,
    id           text NOT NULL,
    recipient_id text NOT NULL,
    platform     text NOT NULL CHECK (platform IN ('fcm', 'apns', 'webpush')),
    token        text NOT NULL,
    p256dh       text NOT NULL DEFAULT '',
    auth         text NOT NULL DEFAULT '',
    app          text NOT NULL DEFAULT '',
    expires_at   timestamptz, -- a Web Push subscription's expirationTime
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, platform, token),
    FOREIGN KEY (tenant_id, recipient_id) REFERENCES communication.recipients (tenant_id, external_id) ON DELETE CASCADE
);
-- A push send reads a profile's devices; so does its page.
CREATE INDEX devices_recipient ON communication.devices (tenant_id, recipient_id, last_seen_at DESC);

-- audit_row as before, with last_seen_at among the bookkeeping columns: an app registers its token
-- at every launch, which refreshes it and is not a change to audit.
CREATE OR REPLACE FUNCTION communication.audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actor   jsonb := nullif(current_setting('comms.actor', true), '')::jsonb;
    old_row jsonb;
    new_row jsonb;
    r       jsonb;
    col     text;
    verb    text := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    target  text;
    noise   text[] := ARRAY['updated_at', 'last_used_at', 'last_seen_at', 'last_tested_at', 'health', 'health_reason', 'failing_since', 'revision'];
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

-- Audited with the tokens and keys masked: they reach a person's phone or browser.
CREATE TRIGGER devices_audit AFTER INSERT OR UPDATE OR DELETE ON communication.devices
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('device', 'id', 'token', 'p256dh', 'auth');
