-- The lease sweep (store.SweepExpiredLeases) looks for messages left in 'sending' after their
-- lease expired. Without an index it scanned all of message_logs every ten seconds, a cost that
-- grows with every message ever sent; only the few rows in flight belong in this index.
-- Built in the migration's transaction, so writes to message_logs wait for one scan of the table.
CREATE INDEX message_logs_sending_lease ON communication.message_logs (lease_expires_at) WHERE status = 'sending';
