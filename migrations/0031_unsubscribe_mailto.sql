-- A tenant's mailbox for unsubscribe requests by email (docs/recipients.md#unsubscribe-links):
-- when set, List-Unsubscribe carries a mailto: beside the signed https link. Empty: https only.
ALTER TABLE communication.tenants ADD COLUMN unsubscribe_mailto text NOT NULL DEFAULT '';
