-- Templates: a tenant's named, versioned, localized message bodies. A version is immutable once
-- written; which version each locale sends is a separate row, so activation is one upsert.
CREATE TABLE communication.templates (
    tenant_id      text NOT NULL REFERENCES communication.tenants (id),
    key            text NOT NULL,
    name           text NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('sms', 'email')),
    category       text NOT NULL DEFAULT 'transactional',
    default_locale text NOT NULL,
    variables      jsonb NOT NULL,            -- JSON Schema of the data object
    next_version   integer NOT NULL DEFAULT 1,
    revision       bigint NOT NULL DEFAULT 1,  -- counts changes that alter what sends render
    archived_at    timestamptz,               -- archived: no sends, history readable
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE communication.template_versions (
    tenant_id    text NOT NULL,
    template_key text NOT NULL,
    version      integer NOT NULL,
    locale       text NOT NULL,
    subject      text NOT NULL DEFAULT '',
    body_text    text NOT NULL DEFAULT '',
    body_html    text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_key, version),
    FOREIGN KEY (tenant_id, template_key) REFERENCES communication.templates (tenant_id, key)
);

CREATE TABLE communication.template_active_versions (
    tenant_id    text NOT NULL,
    template_key text NOT NULL,
    locale       text NOT NULL,
    version      integer NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_key, locale),
    FOREIGN KEY (tenant_id, template_key, version) REFERENCES communication.template_versions (tenant_id, template_key, version)
);

-- What a message was rendered from, exactly.
ALTER TABLE communication.message_logs
    ADD COLUMN template_key     text,
    ADD COLUMN template_version integer,
    ADD COLUMN template_locale  text;

-- GET /v1/messages?template= pages a template's messages newest first.
CREATE INDEX message_logs_template ON communication.message_logs (tenant_id, template_key, created_at DESC, id DESC)
    WHERE template_key IS NOT NULL;
