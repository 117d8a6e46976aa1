-- Self-service keys (docs/api.md): when each key was last used, to the minute. The API keeps
-- uses in memory and writes them in one statement a minute, not one write per request.
ALTER TABLE communication.api_keys ADD COLUMN last_used_at timestamptz;
