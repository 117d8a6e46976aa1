-- Every SMS records how the network carries it: usage and billing count segments, and a tenant
-- sees why a message cost three. NULL for email and for SMS accepted before this migration.
ALTER TABLE communication.message_logs
    ADD COLUMN sms_encoding   text,
    ADD COLUMN sms_characters integer,
    ADD COLUMN sms_segments   integer;
