-- Dashboard sessions (docs/dashboard.md): a signed-in browser holds a random token in an
-- HttpOnly cookie; only its SHA-256 is stored. A session lives 8 hours at most and ends at once
-- when its API key is revoked or expires (every request joins the key).
CREATE TABLE communication.dashboard_sessions (
    token_hash bytea PRIMARY KEY,
    key_id     text NOT NULL REFERENCES communication.api_keys (id),
    csrf       text NOT NULL, -- the token every form that changes something must carry
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON communication.dashboard_sessions (expires_at);
