-- Erasure of a recipient (docs/recipients.md#erasure): POST /v1/erasures removes one person's
-- address and content from every table that holds it, in bounded batches.

-- The key of recipients' keyed hashes: 32 random bytes drawn by PostgreSQL (gen_random_uuid uses
-- its strong random source), made once per database and never changed, so a hash made today
-- matches one made in a year. It lives in the database because the audit trigger below needs it;
-- the hash keeps addresses out of reading, exports and the audit log, not from someone who holds
-- the whole database (docs/recipients.md#erasure says so).
CREATE TABLE communication.recipient_hash_key (
    only_one boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    key      bytea NOT NULL CHECK (length(key) = 32)
);
INSERT INTO communication.recipient_hash_key (key) VALUES (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- HMAC-SHA-256 (RFC 2104) on PostgreSQL's own sha256, so no extension is needed; Go's crypto/hmac
-- gives the same bytes (internal/store/erasures_test.go).
CREATE FUNCTION communication.hmac_sha256(key bytea, msg bytea) RETURNS bytea LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k    bytea := key || decode(repeat('00', 64 - length(key)), 'hex');
    ipad bytea := k;
    opad bytea := k;
BEGIN
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);  -- 0x36
        opad := set_byte(opad, i, get_byte(k, i) # 92);  -- 0x5c
    END LOOP;
    RETURN sha256(opad || sha256(ipad || msg));
END
$$;

-- recipient_key is message.RecipientKey in SQL: the bare email address lower-cased (from
-- "Name <addr>" too), or the number as given.
CREATE FUNCTION communication.recipient_key(channel text, recipient text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN channel = 'email'
                THEN lower(coalesce(substring(recipient FROM '<([^<>]*)>[ \t\r\n]*$'), btrim(recipient, E' \t\r\n')))
                ELSE btrim(recipient, E' \t\r\n') END
$$;

-- recipient_hash is a recipient's keyed hash within a tenant and channel, in hex: the same
-- address hashes differently for two tenants.
CREATE FUNCTION communication.recipient_hash(tenant_id text, channel text, recipient_key text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT encode(communication.hmac_sha256(k.key,
        convert_to(tenant_id, 'UTF8') || '\x00'::bytea || convert_to(channel, 'UTF8') || '\x00'::bytea || convert_to(recipient_key, 'UTF8')), 'hex')
    FROM communication.recipient_hash_key k
$$;

-- Every suppression carries its recipient's hash: the intake looks it up by the hash, the audit
-- log names it by the hash, and an erased person's opt-out keeps only the hash (its recipient
-- becomes 'erased:' || hash).
ALTER TABLE communication.suppressions ADD COLUMN recipient_hash text;
UPDATE communication.suppressions SET recipient_hash = communication.recipient_hash(tenant_id, channel, recipient);
ALTER TABLE communication.suppressions ALTER COLUMN recipient_hash SET NOT NULL;
CREATE UNIQUE INDEX suppressions_hash ON communication.suppressions (tenant_id, channel, recipient_hash);

CREATE FUNCTION communication.suppressions_hash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.recipient NOT LIKE 'erased:%' THEN
        NEW.recipient_hash := communication.recipient_hash(NEW.tenant_id, NEW.channel, NEW.recipient);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER suppressions_hash BEFORE INSERT OR UPDATE OF recipient ON communication.suppressions
    FOR EACH ROW EXECUTE FUNCTION communication.suppressions_hash();

-- The audit log names a suppression by channel and hash, and masks the address.
DROP TRIGGER suppressions_audit ON communication.suppressions;
CREATE TRIGGER suppressions_audit AFTER INSERT OR UPDATE OR DELETE ON communication.suppressions
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('suppression', 'channel,recipient_hash', 'recipient');

-- The audit rows written before this migration named the address in clear: they are rewritten
-- once, here, the only time the append-only rule is lifted, so that erasure never has to.
ALTER TABLE communication.audit_log DISABLE TRIGGER audit_log_append_only;
UPDATE communication.audit_log a
SET target_id = h.channel || '/' || h.hash,
    before = CASE WHEN a.before IS NULL THEN NULL ELSE a.before || jsonb_build_object('recipient', '***', 'recipient_hash', h.hash) END,
    after  = CASE WHEN a.after IS NULL THEN NULL ELSE a.after || jsonb_build_object('recipient', '***', 'recipient_hash', h.hash) END
FROM (
    SELECT id, split_part(target_id, '/', 1) AS channel,
           communication.recipient_hash(tenant_id, split_part(target_id, '/', 1), substr(target_id, strpos(target_id, '/') + 1)) AS hash
    FROM communication.audit_log WHERE target_type = 'suppression' AND tenant_id IS NOT NULL
) h
WHERE a.id = h.id;
ALTER TABLE communication.audit_log ENABLE TRIGGER audit_log_append_only;

-- When an erasure removed the message's recipient and content.
ALTER TABLE communication.message_logs ADD COLUMN erased_at timestamptz;

-- An erasure: the address in clear only while it runs (the eraser looks for it), its hash for
-- ever, and what it changed.
CREATE TABLE communication.erasures (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL,
    channel            text NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient          text NOT NULL,
    recipient_hash     text NOT NULL,
    status             text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    messages           bigint NOT NULL DEFAULT 0,
    canceled           bigint NOT NULL DEFAULT 0,
    events             bigint NOT NULL DEFAULT 0,
    callbacks          bigint NOT NULL DEFAULT 0,
    dead_letters       bigint NOT NULL DEFAULT 0,
    webhook_deliveries bigint NOT NULL DEFAULT 0,
    suppressions       bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    CHECK (status = 'running' OR recipient = '')
);
-- One running erasure per person: asking again while it runs answers the same one.
CREATE UNIQUE INDEX erasures_running ON communication.erasures (tenant_id, channel, recipient_hash) WHERE status = 'running';
CREATE INDEX erasures_due ON communication.erasures (updated_at) WHERE status = 'running';
CREATE TRIGGER erasures_audit AFTER INSERT ON communication.erasures
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('erasure', 'id', 'recipient');
