-- Recipient profiles (docs/recipients.md#profiles): the people a tenant sends to, by the tenant's
-- own id for them, with their addresses, locale, time zone and free-form data.
CREATE TABLE communication.recipients (
    tenant_id   text NOT NULL,
    external_id text NOT NULL,
    email       text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    locale      text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, external_id)
);
-- Cursor pages in id order; an erasure finds a profile by its address.
CREATE INDEX recipients_email ON communication.recipients (tenant_id, lower(email)) WHERE email <> '';
CREATE INDEX recipients_phone ON communication.recipients (tenant_id, phone) WHERE phone <> '';

-- Audited with the addresses and data masked: the audit log never holds a person's address in
-- clear (docs/recipients.md#erasure).
CREATE TRIGGER recipients_audit AFTER INSERT OR UPDATE OR DELETE ON communication.recipients
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('recipient', 'external_id', 'email', 'phone', 'data');
