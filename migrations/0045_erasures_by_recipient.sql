-- The deliverer stores a delivery of an event that names an erased person without the address
-- (store.RecordWebhookOutcomes): it looks the person's erasures up by tenant and keyed hash, those
-- running and those finished, for each delivery whose event names an address. erasures is small
-- (one row a person a tenant asked to forget), so the index is built in the migration's
-- transaction.
CREATE INDEX erasures_recipient ON communication.erasures (tenant_id, recipient_hash);
