-- What a tenant's messages are about, and what each person wants of them (docs/recipients.md#categories-and-preferences).
--
-- A message's category is "transactional", "marketing", or the key of a category its tenant
-- declares; each declared category has a kind, one of the two, which decides routing (the
-- fallback policy) as the built-in ones do.
ALTER TABLE communication.message_logs DROP CONSTRAINT IF EXISTS message_logs_category_check;

CREATE TABLE communication.categories (
    tenant_id   text NOT NULL REFERENCES communication.tenants (id) ON DELETE CASCADE,
    key         text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    kind        text NOT NULL CHECK (kind IN ('transactional', 'marketing')),
    default_in  boolean NOT NULL,
    required    boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- A person's choice for one category on one channel. The person is a recipient profile
-- ('recipient:' || external id) or an address, by its keyed hash ('address:' || hash, as the
-- suppression list keeps it), so an erasure leaves nothing to find here.
CREATE TABLE communication.preferences (
    tenant_id  text NOT NULL REFERENCES communication.tenants (id) ON DELETE CASCADE,
    subject    text NOT NULL,
    category   text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms')),
    opted_in   boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject, category, channel),
    FOREIGN KEY (tenant_id, category) REFERENCES communication.categories (tenant_id, key) ON DELETE CASCADE
);

CREATE TRIGGER categories_audit AFTER INSERT OR UPDATE OR DELETE ON communication.categories
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('category', 'key');
-- A choice is audited under its person (a profile's id, or an address's hash), never an address.
CREATE TRIGGER preferences_audit AFTER INSERT OR UPDATE OR DELETE ON communication.preferences
    FOR EACH ROW EXECUTE FUNCTION communication.audit_row('preference', 'subject,category,channel');
