-- A tenant's inbox secret (docs/inbox.md#tokens-your-backend-signs): the key its own backend signs
-- recipient tokens with, so it needs no call to comms per token. Sealed as provider credentials
-- are (comms must hold the secret itself to check an HMAC). After a rotation the previous secret
-- stays valid for a day, so tokens already handed out keep working.
CREATE TABLE communication.inbox_secrets (
    tenant_id        text PRIMARY KEY REFERENCES communication.tenants (id) ON DELETE CASCADE,
    key_version      text NOT NULL,
    sealed           bytea NOT NULL,
    previous_version text,
    previous_sealed  bytea,
    rotated_at       timestamptz NOT NULL DEFAULT now()
);

-- Audited with the sealed secrets masked.
CREATE TRIGGER inbox_secrets_audit AFTER INSERT OR UPDATE OR DELETE ON communication.inbox_secrets
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('inbox_secret', 'tenant_id', 'sealed', 'previous_sealed');
