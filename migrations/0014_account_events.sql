-- Account events (docs/events.md): changes to a tenant's setup rather than to a message. Like
-- message events, each is written by a trigger in the transaction of the change it describes, and
-- the events publisher takes the unpublished ones in order to comms.events.
CREATE TABLE communication.account_events (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    type        text NOT NULL,
    subject     text NOT NULL, -- the provider config or webhook endpoint concerned
    data        jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL DEFAULT now(),
    published   boolean NOT NULL DEFAULT false
);
CREATE INDEX account_events_unpublished ON communication.account_events (id) WHERE NOT published;

-- A tenant's provider config whose credentials are refused, whose circuit opens (from healthy:
-- the half-open probes in between are not news) or that recovers from either.
CREATE FUNCTION communication.provider_health_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    typ text;
BEGIN
    IF NEW.health = 'auth_failed' THEN
        typ := 'comms.provider.auth_failed';
    ELSIF NEW.health = 'circuit_open' AND OLD.health = 'healthy' THEN
        typ := 'comms.provider.circuit_open';
    ELSIF NEW.health = 'healthy' THEN
        typ := 'comms.provider.recovered';
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO communication.account_events (tenant_id, type, subject, data)
    VALUES (NEW.tenant_id, typ, NEW.id, jsonb_build_object('provider_type', NEW.type, 'health', NEW.health, 'reason', NEW.health_reason));
    RETURN NULL;
END
$$;

CREATE TRIGGER provider_configs_health_event AFTER UPDATE OF health ON communication.provider_configs
    FOR EACH ROW WHEN (OLD.health IS DISTINCT FROM NEW.health AND NEW.tenant_id IS NOT NULL)
    EXECUTE FUNCTION communication.provider_health_event();

-- A webhook endpoint the deliverers disabled (a tenant's own PATCH leaves disabled_reason empty).
CREATE FUNCTION communication.endpoint_disabled_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO communication.account_events (tenant_id, type, subject, data, occurred_at)
    VALUES (NEW.tenant_id, 'comms.webhook_endpoint.disabled', NEW.id, jsonb_build_object('reason', NEW.disabled_reason), NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER webhook_endpoints_disabled_event AFTER UPDATE OF enabled ON communication.webhook_endpoints
    FOR EACH ROW WHEN (OLD.enabled AND NOT NEW.enabled AND NEW.disabled_reason <> '')
    EXECUTE FUNCTION communication.endpoint_disabled_event();
