-- 0007's partial index on message_logs (lease_expires_at) WHERE status = 'sending' indexed the
-- two columns every claim and every outcome change, so none of those updates could be HOT: each
-- wrote a new entry into every index of message_logs (0% HOT updates in an isolation run, against
-- 73% before it). Two updates per message outweigh the lease sweep it served, which runs every
-- ten seconds; that sweep now walks the outbox (unfinished messages only) and looks each message
-- up by its primary key (store.SweepExpiredLeases).
DROP INDEX IF EXISTS communication.message_logs_sending_lease;
