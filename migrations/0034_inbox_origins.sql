-- The web origins a tenant's app reads its people's inboxes from (docs/inbox.md#from-another-origin):
-- the inbox routes answer those origins' browsers with CORS headers.
ALTER TABLE communication.tenants ADD COLUMN inbox_origins text[] NOT NULL DEFAULT '{}';
