-- Bring Your Own Provider: the non-secret sender beside the sealed credentials, when a config was
-- last proven to work, and what each message cost.
ALTER TABLE communication.provider_configs
    ADD COLUMN sender         jsonb NOT NULL DEFAULT '{}', -- from number/address: shown to the tenant
    ADD COLUMN last_tested_at timestamptz,
    ADD COLUMN health_reason  text NOT NULL DEFAULT '',
    -- encrypted_config and key_version go together: both set, or (the sandbox) both empty
    ADD CONSTRAINT provider_configs_sealed CHECK ((encrypted_config IS NULL) = (key_version IS NULL));

-- Rotation walks the configs not yet under the newest key.
CREATE INDEX provider_configs_key_version ON communication.provider_configs (key_version, id);

-- Names are unique per owner so a tenant can tell its configs apart (system defaults share NULL).
CREATE UNIQUE INDEX provider_configs_name ON communication.provider_configs (coalesce(tenant_id, ''), name);

ALTER TABLE communication.message_logs
    ADD COLUMN cost          text NOT NULL DEFAULT '', -- as the provider reported it, e.g. "-0.00790"
    ADD COLUMN cost_currency text NOT NULL DEFAULT '';
