-- The deliverer stores a delivery of an event that names a person being erased, or erased since
-- the event was published, without the address (store.RecordWebhookOutcomes). For each batch it
-- reads the erasures running or finished since the batch's oldest publication: the running ones
-- by erasures_due, the others by this index. erasures is small (a row for each person a tenant
-- asked to forget), so the index is built in the migration's transaction.
CREATE INDEX erasures_finished ON communication.erasures (finished_at);
